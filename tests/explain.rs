//! EXPLAIN and EXPLAIN ANALYZE with shardkeeper's own figures (their shapes are compared
//! with InfluxDB 1.6 in `compat_statements.rs`): what EXPLAIN counts follows where the
//! points are (a head, column files), and what EXPLAIN ANALYZE reports is what its run
//! listed, copied and decoded.

mod common;
use common::{first_result, query, request, wait_until, TempNode};
use serde_json::Value;
use std::net::SocketAddr;

const DB: &str = "ex";
const T0: i64 = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z
const SEC: i64 = 1_000_000_000;

/// Heads are written out only past 1 MiB (never for being idle), so a test decides when.
const CONFIG: &str = "max_head_mib = 1\nidle_flush_seconds = 3600\n";

/// 100 points of `v` for each of three series of `m`, from `first` seconds after T0.
fn write_m(addr: SocketAddr, first: i64) {
    let mut lines = String::new();
    for i in first..first + 100 {
        for host in ["a", "b", "c"] {
            lines.push_str(&format!("m,host={host} v={i}.5 {}\n", T0 + i * SEC));
        }
    }
    write(addr, &lines);
}

/// Enough points of another measurement in the same shard to fill the head past its
/// budget, so that it is written out as a column file.
fn fill_head(addr: SocketAddr, round: i64) {
    let mut lines = String::new();
    for i in 0..60_000i64 {
        let t = T0 + 1000 * SEC + round * 60_000 + i;
        lines.push_str(&format!("filler,k={} pad=\"{:0>24}\" {t}\n", i % 50, i));
    }
    write(addr, &lines);
}

fn write(addr: SocketAddr, lines: &str) {
    let r = request(
        addr,
        "POST",
        &format!("/write?db={DB}"),
        &[],
        lines.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

/// The lines of an EXPLAIN [ANALYZE] answer, which must have succeeded.
fn lines(addr: SocketAddr, q: &str) -> Vec<String> {
    let result = first_result(&query(addr, DB, q));
    result["series"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: no lines: {result}"))
        .iter()
        .map(|row| row[0].as_str().expect("a line of text").to_owned())
        .collect()
}

/// The number after `label` on the first line that has it (`NUMBER OF BLOCKS: `,
/// `float_blocks_decoded: `).
fn figure(lines: &[String], label: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.split_once(label).map(|(_, n)| n))
        .unwrap_or_else(|| panic!("no {label:?} in {lines:#?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{label:?} in {lines:#?}: {e}"))
}

fn plan(addr: SocketAddr, q: &str) -> Vec<String> {
    lines(addr, &format!("EXPLAIN {q}"))
}

fn trace(addr: SocketAddr, q: &str) -> Vec<String> {
    lines(addr, &format!("EXPLAIN ANALYZE {q}"))
}

#[test]
fn explain_figures_follow_the_points_from_the_head_into_column_files() {
    let node = TempNode::start(CONFIG);
    let addr = node.daemon.addr;
    assert_eq!(
        query(addr, "", &format!("CREATE DATABASE {DB}")).status,
        200
    );
    let select = "SELECT v FROM m";

    // In the head: 300 cached values, no file, and ANALYZE copies them, decoding nothing.
    write_m(addr, 0);
    let p = plan(addr, select);
    assert_eq!(p[..2], ["EXPRESSION: <nil>", "AUXILIARY FIELDS: v::float"]);
    for (label, n) in [
        ("NUMBER OF SHARDS: ", 1),
        ("NUMBER OF SERIES: ", 3),
        ("CACHED VALUES: ", 300),
        ("NUMBER OF FILES: ", 0),
        ("NUMBER OF BLOCKS: ", 0),
        ("SIZE OF BLOCKS: ", 0),
    ] {
        assert_eq!(figure(&p, label), n, "{label} in {p:#?}");
    }
    let t = trace(addr, select);
    assert_eq!(figure(&t, "cached_values: "), 300, "{t:#?}");
    assert_eq!(figure(&t, "float_blocks_decoded: "), 0, "{t:#?}");
    assert_eq!(figure(&t, "cursors_aux: "), 3, "{t:#?}");

    // Written out: the cached values are gone, a file and a block per series instead.
    fill_head(addr, 0);
    wait_until("the head to be written out", || {
        figure(&plan(addr, select), "CACHED VALUES: ") == 0
    });
    let p = plan(addr, select);
    assert_eq!(figure(&p, "NUMBER OF FILES: "), 3, "{p:#?}");
    assert_eq!(figure(&p, "NUMBER OF BLOCKS: "), 3, "{p:#?}");
    let one_file = figure(&p, "SIZE OF BLOCKS: ");
    assert!(one_file > 0, "{p:#?}");

    // More points: in the head again, beside the file; then a second file.
    write_m(addr, 100);
    let p = plan(addr, select);
    assert_eq!(figure(&p, "CACHED VALUES: "), 300, "{p:#?}");
    assert_eq!(figure(&p, "NUMBER OF BLOCKS: "), 3, "{p:#?}");
    fill_head(addr, 1);
    wait_until("the head to be written out again", || {
        figure(&plan(addr, select), "CACHED VALUES: ") == 0
    });
    let p = plan(addr, select);
    assert_eq!(figure(&p, "NUMBER OF FILES: "), 6, "{p:#?}");
    assert_eq!(figure(&p, "NUMBER OF BLOCKS: "), 6, "{p:#?}");
    let two_files = figure(&p, "SIZE OF BLOCKS: ");
    assert!(two_files > one_file, "{p:#?}");
    // A range over the first file's points counts its blocks alone.
    let first = format!("{select} WHERE time < {}", T0 + 100 * SEC);
    let p = plan(addr, &first);
    assert_eq!(figure(&p, "NUMBER OF BLOCKS: "), 3, "{p:#?}");
    assert_eq!(figure(&p, "SIZE OF BLOCKS: "), one_file, "{p:#?}");

    // ANALYZE decodes every block EXPLAIN counts for the raw rows...
    let t = trace(addr, select);
    assert_eq!(figure(&t, "float_blocks_decoded: "), 6, "{t:#?}");
    assert_eq!(figure(&t, "float_blocks_size_bytes: "), two_files, "{t:#?}");
    assert_eq!(figure(&t, "cached_values: "), 0, "{t:#?}");
    // ...but only the newest file's for last(), which EXPLAIN counts all of.
    assert_eq!(
        figure(&plan(addr, "SELECT last(v) FROM m"), "NUMBER OF BLOCKS: "),
        6
    );
    let t = trace(addr, "SELECT last(v) FROM m");
    assert_eq!(figure(&t, "float_blocks_decoded: "), 3, "{t:#?}");
    assert_eq!(figure(&t, "cursors_ref: "), 3, "{t:#?}");
    // A tag condition narrows the series, and what is read of them.
    let p = plan(addr, "SELECT v FROM m WHERE host = 'b'");
    assert_eq!(figure(&p, "NUMBER OF SERIES: "), 1, "{p:#?}");
    assert_eq!(figure(&p, "NUMBER OF BLOCKS: "), 2, "{p:#?}");
    node.daemon.stop();
}

/// The statement's times: total is planning plus execution, each in Go's spelling.
#[test]
fn explain_analyze_times_add_up_in_gos_duration_format() {
    let node = TempNode::start(CONFIG);
    let addr = node.daemon.addr;
    assert_eq!(
        query(addr, "", &format!("CREATE DATABASE {DB}")).status,
        200
    );
    write_m(addr, 0);
    let t = trace(addr, "SELECT mean(v) FROM m GROUP BY host");
    assert_eq!(t[..2], [".", "└── select"], "{t:#?}");
    let nanos = |label: &str| -> f64 {
        let text = t
            .iter()
            .find_map(|l| l.split_once(label).map(|(_, v)| v.to_owned()))
            .unwrap_or_else(|| panic!("no {label} in {t:#?}"));
        let (number, scale) = [("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)]
            .into_iter()
            .find_map(|(unit, scale)| Some((text.strip_suffix(unit)?.to_owned(), scale)))
            .unwrap_or_else(|| panic!("{label}{text} is no Go duration"));
        number
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            * scale
    };
    let (total, planning, execution) = (
        nanos("total_time: "),
        nanos("planning_time: "),
        nanos("execution_time: "),
    );
    assert!(total > 0.0 && planning > 0.0, "{t:#?}");
    assert!((planning + execution - total).abs() <= 2.0, "{t:#?}");
    assert_eq!(
        t.last().map(String::as_str),
        Some(""),
        "ends with its newline"
    );
    node.daemon.stop();
}

/// What EXPLAIN refuses comes in 1.x's JSON shapes: the whole query while parsing (400),
/// one statement's error (200) that stops the statements after it.
#[test]
fn explain_refusals_come_in_influxdbs_json_shape() {
    let node = TempNode::start(CONFIG);
    let addr = node.daemon.addr;
    assert_eq!(
        query(addr, "", &format!("CREATE DATABASE {DB}")).status,
        200
    );
    write_m(addr, 0);
    for (q, message) in [
        (
            "EXPLAIN DROP MEASUREMENT m",
            "error parsing query: found DROP, expected SELECT at line 1, char 9",
        ),
        (
            "EXPLAIN ANALYZE VERBOSE SELECT v FROM m",
            "error parsing query: found VERBOSE, expected SELECT at line 1, char 17",
        ),
    ] {
        query(addr, DB, q).assert_error(400, message);
    }
    for (q, message) in [
        (
            "EXPLAIN SELECT v FROM nowhere.autogen.m",
            "database not found: nowhere",
        ),
        (
            "EXPLAIN ANALYZE SELECT mean(v), v FROM m",
            "mixing aggregate and non-aggregate queries is not supported",
        ),
        (
            "EXPLAIN SELECT v FROM m GROUP BY time(1m)",
            "GROUP BY requires at least one aggregate function",
        ),
    ] {
        let r = query(addr, DB, &format!("{q}; SELECT v FROM m"));
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(
            r.json(),
            serde_json::json!({"results": [{"statement_id": 0, "error": message}]}),
            "{q}"
        );
    }
    // No database: the statement's error, as the SELECT's.
    let r = query(addr, "", "EXPLAIN SELECT v FROM m");
    assert_eq!(
        r.json()["results"][0]["error"],
        Value::from("database name required")
    );
    node.daemon.stop();
}
