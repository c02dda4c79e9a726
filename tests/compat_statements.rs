//! Statements whose answers depend on the server rather than on the data, and the bytes of
//! `/query`'s JSON, compared with real InfluxDB 1.6.7: the escaping of its Go encoder, SHOW
//! QUERIES and KILL QUERY, SHOW DIAGNOSTICS and SHOW STATS (1.x's series and columns with
//! our own values), continuous queries and SELECTs normalized against `db=` and `rp=`, and
//! EXPLAIN [ANALYZE] (1.6's plan and trace with our own figures). What may differ between
//! two servers (query ids, durations, uptimes, paths, the sizes of what storage holds) is
//! the only thing normalized; the shapes never are.

mod common;
use common::influxd::SideBySide;
use common::{query, request, urlencode};
use serde_json::Value;
use std::net::SocketAddr;

/// A measurement, tag value and string field holding `<`, `>` and `&`, and a string with
/// U+2028, backspace, form feed and escape.
const ESCAPED_LINES: &str = "c<p>&,t=a<b>&c v=\"x<y>&z\" 1000000000\n\
                             e,t=x v=\"a\u{2028}b\u{2029}c\u{8}d\u{c}e\u{1b}f\" 2000000000\n";

fn get(addr: SocketAddr, params: &str, headers: &[(&str, &str)]) -> common::Response {
    request(addr, "GET", &format!("/query?{params}"), headers, b"")
}

#[test]
fn json_strings_are_escaped_as_influxdbs_go_encoder_escapes_them() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    both.create_database("esc");
    both.write("esc", ESCAPED_LINES);
    let select = |q: &str| format!("db=esc&q={}", urlencode(q));
    let asked: Vec<(String, Vec<(&str, &str)>)> = vec![
        (select("SELECT * FROM \"c<p>&\""), vec![]),
        (select("SELECT * FROM e"), vec![]),
        (select("SELECT * FROM \"c<p>&\"") + "&pretty=true", vec![]),
        (
            select("SELECT * FROM \"c<p>&\"; SELECT * FROM e") + "&chunked=true&chunk_size=1",
            vec![],
        ),
        (select("SHOW MEASUREMENTS"), vec![]),
        (select("SHOW TAG VALUES WITH KEY = t"), vec![]),
        // Errors: of the whole query (400) and of a statement (200).
        (select("SELECT * FROM <"), vec![]),
        (select("SELECT * FROM nowhere.\"a<b\".m"), vec![]),
        // CSV is not escaped so.
        (
            select("SELECT * FROM \"c<p>&\""),
            vec![("Accept", "application/csv")],
        ),
        (
            select("SELECT * FROM <"),
            vec![("Accept", "application/csv")],
        ),
    ];
    let mut differences = Vec::new();
    for (params, headers) in &asked {
        let [theirs, ours] = both.servers().map(|addr| get(addr, params, headers));
        if (theirs.status, &theirs.body) != (ours.status, &ours.body) {
            differences.push(format!(
                "{params} {headers:?}\n  influxd:     {} {}\n  shardkeeper: {} {}",
                theirs.status,
                String::from_utf8_lossy(&theirs.body),
                ours.status,
                String::from_utf8_lossy(&ours.body)
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // A /write error is 1.x's JSON too.
    let [theirs, ours] = both
        .servers()
        .map(|addr| request(addr, "POST", "/write?db=esc", &[], b"bad<line"));
    assert_eq!(
        (theirs.status, String::from_utf8_lossy(&theirs.body)),
        (ours.status, String::from_utf8_lossy(&ours.body))
    );
}

/// SHOW QUERIES' rows with what differs between two servers (the query id, the time it
/// has run) replaced by what it must look like.
fn queries_shape(mut answer: Value) -> Value {
    if let Some(rows) = answer["results"][0]["series"][0]["values"].as_array_mut() {
        for row in rows {
            assert!(row[0].as_u64().is_some_and(|id| id > 0), "{row}");
            row[0] = Value::from("<qid>");
            let duration = row[3].as_str().unwrap_or_default().to_owned();
            assert!(is_go_duration(&duration), "{row}");
            row[3] = Value::from("<duration>");
        }
    }
    answer
}

/// `15µs`, `2ms`, `3s`, `1m2s`: what Go's Duration prints after 1.x's truncation.
fn is_go_duration(s: &str) -> bool {
    let digits_then = |s: &str, units: &[&str]| {
        units.iter().any(|u| {
            s.strip_suffix(u)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    digits_then(s, &["ns", "µs", "ms", "s"])
        || s.split_once('m').is_some_and(|(m, rest)| {
            m.bytes().all(|b| b.is_ascii_digit()) && digits_then(rest, &["s"])
        })
}

#[test]
fn server_statements_answer_in_influxdbs_shapes() {
    // The subscriber on, as ours is by default (its diagnostics and statistics compared).
    let Some(both) = SideBySide::start_with_influxd("[subscriber]\n  enabled = true\n") else {
        return;
    };
    both.create_database("srv");
    both.write(
        "srv",
        "cpu,host=a v=1 1000000000\ncpu,host=b v=2 1000000000\nmem,host=a v=3 1000000000\n",
    );
    let ask = |addr: SocketAddr, db: &str, q: &str| {
        let r = query(addr, db, q);
        (r.status, r.json())
    };
    // Compared as they are.
    for (db, q) in [
        ("", "KILL QUERY 999999"),
        ("", "KILL QUERY 999999 ON host1"),
        ("", "KILL QUERY 1 ON 'host1'"),
        ("", "SHOW GRANTS FOR nobody"),
        ("", "SHOW GRANTS"),
        ("", "DROP SHARD 999999"),
        ("", "SHOW DIAGNOSTICS FOR 'nope'"),
        ("", "SHOW STATS FOR 'nope'"),
        ("", "SHOW DIAGNOSTICS FOR system"),
        ("", "SHOW STATS FOR 'database'"),
        ("", "SHOW STATS FOR 'subscriber'"),
        ("", "SHOW DIAGNOSTICS FOR 'config-subscriber'"),
        // 1.x's parser has no WITH KEY for tag keys.
        ("srv", "SHOW TAG KEYS WITH KEY = host"),
        ("srv", "SHOW TAG KEYS FROM cpu WITH KEY =~ /h.*/"),
        ("srv", "SHOW STATS FOR 'database'"),
    ] {
        let [theirs, ours] = both.servers().map(|addr| ask(addr, db, q));
        assert_eq!(theirs, ours, "{q}");
    }
    // SHOW QUERIES lists itself, under the query's whole normalized text and db=.
    for (db, q) in [
        ("", "SHOW QUERIES"),
        ("srv", "show queries"),
        ("srv", "SHOW QUERIES; SHOW DATABASES"),
    ] {
        let [theirs, ours] = both.servers().map(|addr| {
            let (status, json) = ask(addr, db, q);
            (status, queries_shape(json))
        });
        assert_eq!(theirs, ours, "{q}");
    }
    // SHOW DIAGNOSTICS and SHOW STATS: each series we answer is one 1.x answers, with its
    // name, tags and columns, and each value of the type 1.x gives it.
    for q in [
        "SHOW DIAGNOSTICS",
        "SHOW STATS",
        "SHOW DIAGNOSTICS FOR 'system'",
    ] {
        let [(s1, theirs), (s2, ours)] = both.servers().map(|addr| ask(addr, "srv", q));
        assert_eq!((s1, s2), (200, 200), "{q}");
        let theirs = theirs["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ours = ours["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!ours.is_empty(), "{q}");
        for series in &ours {
            let same = theirs.iter().find(|t| {
                t["name"] == series["name"]
                    && t["tags"] == series["tags"]
                    && t["columns"] == series["columns"]
            });
            let Some(same) = same else {
                panic!("{q}: {series} is not among influxd's series {theirs:?}");
            };
            let kinds = |s: &Value| -> Vec<&'static str> {
                s["values"][0]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| match v {
                        Value::Number(_) => "number",
                        Value::String(_) => "string",
                        Value::Bool(_) => "bool",
                        _ => "other",
                    })
                    .collect()
            };
            assert_eq!(kinds(same), kinds(series), "{q}: {series} against {same}");
        }
    }
    // SHOW DIAGNOSTICS' system row: this process, started before now.
    let (_, diagnostics) = ask(both.ours.addr, "", "SHOW DIAGNOSTICS FOR 'system'");
    let row = &diagnostics["results"][0]["series"][0]["values"][0];
    assert_eq!(row[0], Value::from(both.ours.child.id()), "{row}");
    assert!(
        row[2].as_str() < row[1].as_str(),
        "started before now: {row}"
    );
}

/// (db=, rp=, statement), run in this order on both.
const CONTINUOUS_STEPS: &[(&str, &str, &str)] = &[
    ("", "", "CREATE DATABASE cq1"),
    ("", "", "CREATE DATABASE cq2"),
    ("", "", "CREATE RETENTION POLICY r2 ON cq1 DURATION 1d REPLICATION 1"),
    // The request's database, not the ON one, qualifies the measurements.
    (
        "cq1",
        "",
        "CREATE CONTINUOUS QUERY c1 ON cq2 BEGIN SELECT mean(v) INTO m2 FROM cpu GROUP BY time(1m) fill(1.0) END",
    ),
    // rp= names the policy of every measurement that names none.
    (
        "cq1",
        "r2",
        "CREATE CONTINUOUS QUERY c2 ON cq2 BEGIN SELECT mean(v) INTO m2 FROM cpu GROUP BY time(1m) fill(1.5) END",
    ),
    (
        "",
        "",
        "CREATE CONTINUOUS QUERY c3 ON cq2 BEGIN SELECT mean(v) INTO m2 FROM cpu GROUP BY time(1m) END",
    ),
    (
        "nope",
        "",
        "CREATE CONTINUOUS QUERY c4 ON cq2 BEGIN SELECT mean(v) INTO m2 FROM cpu GROUP BY time(1m) END",
    ),
    (
        "cq1",
        "nope",
        "CREATE CONTINUOUS QUERY c5 ON cq2 BEGIN SELECT mean(v) INTO m2 FROM cpu GROUP BY time(1m) END",
    ),
    (
        "cq2",
        "r2",
        "CREATE CONTINUOUS QUERY c6 ON cq2 BEGIN SELECT mean(v) INTO cq1.m2 FROM cq1.cpu GROUP BY time(1m) END",
    ),
    (
        "cq2",
        "",
        "CREATE CONTINUOUS QUERY c7 ON cq1 BEGIN SELECT mean(v) INTO cq1..m3 FROM cq1.r2.cpu GROUP BY time(1m) fill(3) END",
    ),
    ("cq1", "", "SHOW CONTINUOUS QUERIES"),
    // A SELECT reads rp= too.
    ("cq1", "r2", "SELECT * FROM cpu"),
    ("cq1", "", "SELECT * FROM cpu"),
    ("cq1", "r2", "SELECT * FROM cq1.autogen.cpu"),
    ("cq1", "r2", "SELECT max(v) FROM (SELECT v FROM cpu)"),
    ("cq1", "nope", "SELECT * FROM cpu"),
    ("cq1", "r2", "SELECT v INTO m4 FROM cpu"),
    ("cq1", "r2", "SELECT v INTO cq2..m5 FROM cpu"),
];

#[test]
fn continuous_queries_and_selects_are_normalized_against_db_and_rp() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let mut differences = Vec::new();
    // Within r2's day, in whole seconds.
    let recent = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        - 3600)
        * 1_000_000_000;
    for (i, (db, rp, q)) in CONTINUOUS_STEPS.iter().enumerate() {
        if i == 3 {
            for addr in both.servers() {
                for (policy, v) in [("autogen", 1), ("r2", 2)] {
                    let line = format!("cpu,host=a v={v} {recent}");
                    let path = format!("/write?db=cq1&rp={policy}");
                    let r = request(addr, "POST", &path, &[], line.as_bytes());
                    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
                }
            }
        }
        // By GET too, where a writing statement's warning quotes it normalized.
        for method in ["POST", "GET"] {
            if method == "GET" && !q.starts_with("SELECT") {
                continue;
            }
            let params = format!("db={db}&rp={rp}&q={}", urlencode(q));
            let [theirs, ours] = both.servers().map(|addr| {
                let r = request(addr, method, &format!("/query?{params}"), &[], b"");
                (r.status, r.json())
            });
            if theirs != ours {
                differences.push(format!(
                    "{method} {params}\n  influxd:     {theirs:?}\n  shardkeeper: {ours:?}"
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// On fresh servers query ids are the same on both (each `/query` counts from 1, a
/// refused one too). What 1.6 answers for the statements after a KILL of their own query
/// is random (Go's `select` between its done and results channels): shardkeeper answers
/// `query interrupted` for each, which 1.6 answers some of the time.
#[test]
fn query_ids_count_from_one_and_a_killed_query_stops() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    for q in ["KILL QUERY 999", "SHOW QUERIES"] {
        let [theirs, ours] = both.servers().map(|addr| {
            let r = query(addr, "", q);
            let mut json = r.json();
            let row = json.pointer_mut("/results/0/series/0/values/0");
            if let Some(row) = row.and_then(Value::as_array_mut) {
                assert!(
                    is_go_duration(row[3].as_str().unwrap_or_default()),
                    "{row:?}"
                );
                row[3] = Value::from("<duration>");
            }
            (r.status, json)
        });
        assert_eq!(theirs, ours, "{q}");
    }
    // Query 3 kills itself: the KILL answers, the statements after it do not run.
    let r = query(
        both.ours.addr,
        "",
        "KILL QUERY 3; CREATE DATABASE k; SHOW DATABASES",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"results": [
            {"statement_id": 0},
            {"statement_id": 1, "error": "query interrupted"},
        ]})
    );
    let r = query(both.ours.addr, "", "SHOW DATABASES");
    assert_eq!(r.json()["results"][0]["series"][0].get("values"), None);
}

/// (db=, statement), run in this order on both: subscriptions created, refused, listed
/// and dropped, alone and with their policy or database.
const SUBSCRIPTION_STEPS: &[(&str, &str)] = &[
    ("", "SHOW SUBSCRIPTIONS"),
    ("", "CREATE DATABASE s1"),
    ("", "CREATE DATABASE s2"),
    ("", "CREATE RETENTION POLICY r2 ON s1 DURATION 1d REPLICATION 1"),
    ("", "SHOW SUBSCRIPTIONS"),
    ("", "CREATE SUBSCRIPTION a ON s1.autogen DESTINATIONS ALL 'http://127.0.0.1:9092'"),
    ("", "CREATE SUBSCRIPTION a ON s1.autogen DESTINATIONS ANY 'http://127.0.0.1:9092'"),
    (
        "",
        "CREATE SUBSCRIPTION \"b c\" ON s1.r2 DESTINATIONS ANY 'http://h1:1', 'udp://h2:2', 'https://u:p%40@h3:3/x?y=z#f'",
    ),
    ("", "CREATE SUBSCRIPTION a ON s1.r2 DESTINATIONS ALL 'udp://[::1]:9'"),
    ("s1", "create subscription z on s2.\"autogen\" destinations all 'HTTP://H:1', 'http://:2'"),
    ("", "CREATE SUBSCRIPTION x ON nope.autogen DESTINATIONS ALL 'http://h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.nope DESTINATIONS ALL 'http://h:1'"),
    ("", "CREATE SUBSCRIPTION x ON nope.nope DESTINATIONS ALL 'nope'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://ok:1', 'http://h'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'ftp://h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://h:x'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://h:'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://[::1]'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://::1:80'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http:h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://h o:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://h:1/%zz'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://u{@h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL ''"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://h:1#%zz'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://h%41:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://[::1]:80x'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'udp://h:1:2'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL '//h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'mailto:h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://a:b@'"),
    (
        "",
        "CREATE SUBSCRIPTION y ON s1.autogen DESTINATIONS ALL 'HtTpS://h:01', 'http://hé:1/p?q#%41', 'http://[fe80::1%25en0]:1'",
    ),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL 'http://h:1/\\n'"),
    // Refused while parsing.
    ("", "CREATE SUBSCRIPTION x ON s1 DESTINATIONS ALL 'http://h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS SOME 'http://h:1'"),
    ("", "CREATE SUBSCRIPTION x ON s1.autogen DESTINATIONS ALL"),
    ("", "DROP SUBSCRIPTION x ON s1"),
    ("", "SHOW SUBSCRIPTIONS"),
    ("", "DROP SUBSCRIPTION nope ON s1.autogen"),
    ("", "DROP SUBSCRIPTION a ON nope.autogen"),
    ("", "DROP SUBSCRIPTION a ON s1.nope"),
    ("", "DROP SUBSCRIPTION a ON s1.autogen"),
    ("", "SHOW SUBSCRIPTIONS"),
    // A policy's and a database's go with them, and do not come back with the name.
    ("", "DROP RETENTION POLICY r2 ON s1"),
    ("", "CREATE RETENTION POLICY r2 ON s1 DURATION 1d REPLICATION 1"),
    ("", "SHOW SUBSCRIPTIONS"),
    ("", "CREATE SUBSCRIPTION a ON s1.autogen DESTINATIONS ALL 'udp://h:1'"),
    ("", "DROP DATABASE s2"),
    ("", "CREATE DATABASE s2"),
    ("", "SHOW SUBSCRIPTIONS"),
];

#[test]
fn subscription_statements_answer_as_influxdb_1_6() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let mut differences = Vec::new();
    for (db, q) in SUBSCRIPTION_STEPS {
        let [theirs, ours] = both.servers().map(|addr| {
            let r = query(addr, db, q);
            (r.status, String::from_utf8_lossy(&r.body).into_owned())
        });
        if theirs != ours {
            differences.push(format!(
                "{q}\n  influxd:     {theirs:?}\n  shardkeeper: {ours:?}"
            ));
        }
    }
    // In CSV, by GET (the warning of a writing statement), and pretty.
    let show = format!("q={}", urlencode("SHOW SUBSCRIPTIONS"));
    let create = format!(
        "q={}",
        urlencode("CREATE SUBSCRIPTION g ON s1.r2 DESTINATIONS ALL 'http://h:1'")
    );
    for (params, headers) in [
        (show.clone(), vec![("Accept", "application/csv")]),
        (show.clone() + "&pretty=true", vec![]),
        (create, vec![]),
        (show, vec![]),
    ] {
        let [theirs, ours] = both.servers().map(|addr| {
            let r = get(addr, &params, &headers);
            (r.status, String::from_utf8_lossy(&r.body).into_owned())
        });
        if theirs != ours {
            differences.push(format!(
                "GET {params} {headers:?}\n  influxd:     {theirs:?}\n  shardkeeper: {ours:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Three series of `cpu` (a float, an integer and a string field) and two of `mem`, each
/// with points in two shard groups a week apart: with its in-memory index 1.6 counts every
/// series of the database in every shard of the range, so that EXPLAIN's counts can be
/// compared only where each shard holds every series.
fn explain_lines() -> String {
    const T0: i64 = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z
    const WEEK: i64 = 7 * 86_400_000_000_000;
    let mut lines = String::new();
    for start in [T0, T0 + WEEK] {
        for i in 0..20i64 {
            let t = start + i * 10_000_000_000;
            for (host, region) in [("a", "east"), ("b", "west"), ("c", "east")] {
                lines.push_str(&format!(
                    "cpu,host={host},region={region} usage={i}.5,idle={i}i,name=\"n{i}\" {t}\n"
                ));
            }
            for host in ["a", "b"] {
                lines.push_str(&format!("mem,host={host} free={i} {t}\n"));
            }
        }
    }
    lines
}

/// An answer with what depends on the storage engine and the moment masked: the sizes
/// of what would be read (1.6's TSM files and blocks, its cache), times and shard ids.
/// Every label, expression and count of shards, series and cursors stays. Our
/// `cached_values` line (head entries read, a figure 1.6's trace does not have) goes.
fn explain_shape(answer: &Value) -> Value {
    let mut answer = answer.clone();
    let Some(rows) = answer
        .pointer_mut("/results/0/series/0/values")
        .and_then(Value::as_array_mut)
    else {
        return answer;
    };
    const MASKED: [&str; 8] = [
        "CACHED VALUES: ",
        "NUMBER OF FILES: ",
        "NUMBER OF BLOCKS: ",
        "SIZE OF BLOCKS: ",
        "_time: ",
        "_decoded: ",
        "_bytes: ",
        "shard_id: ",
    ];
    rows.retain(|row| {
        !row[0]
            .as_str()
            .unwrap_or_default()
            .contains("cached_values: ")
    });
    for row in rows.iter_mut() {
        let line = row[0].as_str().unwrap_or_default().to_owned();
        if let Some(at) = MASKED
            .iter()
            .find_map(|m| line.find(m).map(|i| i + m.len()))
        {
            row[0] = Value::from(format!("{}<masked>", &line[..at]));
        }
    }
    answer
}

/// The plan's reads as a sorted list: 1.6 plans the calls of a statement in Go's random
/// map order.
fn reads_in_any_order(answer: &Value) -> Vec<String> {
    let lines: Vec<&str> = answer["results"][0]["series"][0]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row[0].as_str())
        .collect();
    let mut reads: Vec<String> = lines
        .split(|l| l.is_empty())
        .map(|r| r.join("\n"))
        .collect();
    reads.sort();
    reads
}

#[test]
fn explain_answers_as_influxdb_1_6_does() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    both.create_database("ex");
    both.write("ex", &explain_lines());
    let ask = |addr: SocketAddr, q: &str| {
        let r = query(addr, "ex", q);
        (r.status, r.json())
    };
    let week = "time >= '2024-01-01T00:00:00Z' AND time < '2024-01-02T00:00:00Z'";
    let mut differences = Vec::new();
    // One read or several in the order of the sources: compared line by line.
    let in_order = [
        "EXPLAIN SELECT usage FROM cpu".to_owned(),
        "EXPLAIN SELECT * FROM cpu".to_owned(),
        "EXPLAIN SELECT *::field FROM cpu WHERE host = 'a'".to_owned(),
        "EXPLAIN SELECT usage, host FROM cpu WHERE region = 'east' AND usage > 3".to_owned(),
        "EXPLAIN SELECT usage FROM cpu WHERE host =~ /[ab]/ AND region != 'east'".to_owned(),
        "EXPLAIN SELECT usage FROM cpu WHERE usage > 3 OR host = 'a'".to_owned(),
        format!("EXPLAIN SELECT usage FROM cpu WHERE {week}"),
        format!("EXPLAIN SELECT mean(usage) FROM cpu WHERE {week} GROUP BY time(1m), host"),
        "EXPLAIN SELECT max(usage), host, idle FROM cpu".to_owned(),
        "EXPLAIN SELECT top(usage, host, 2) FROM cpu".to_owned(),
        "EXPLAIN SELECT top(usage, 2) FROM cpu".to_owned(),
        "EXPLAIN SELECT count(distinct(usage)) FROM cpu".to_owned(),
        "EXPLAIN SELECT distinct(idle) FROM cpu".to_owned(),
        "EXPLAIN SELECT derivative(usage, 2s) FROM cpu".to_owned(),
        format!("EXPLAIN SELECT derivative(mean(usage)) FROM cpu WHERE {week} GROUP BY time(1m)"),
        "EXPLAIN SELECT percentile(usage, 90) FROM cpu".to_owned(),
        "EXPLAIN SELECT usage + idle, usage * 2 FROM cpu".to_owned(),
        "EXPLAIN SELECT usage::integer FROM cpu".to_owned(),
        "EXPLAIN SELECT usage, free FROM cpu, mem".to_owned(),
        "EXPLAIN SELECT free FROM mem, nosuch, cpu".to_owned(),
        "EXPLAIN SELECT * FROM /cpu|mem/".to_owned(),
        "EXPLAIN SELECT usage FROM ex.autogen.cpu".to_owned(),
        "EXPLAIN SELECT mean(nosuch) FROM cpu".to_owned(),
        // Nothing of a known type is read: one empty line.
        "EXPLAIN SELECT nosuch FROM cpu".to_owned(),
        "EXPLAIN SELECT max(nosuch), usage FROM cpu".to_owned(),
        "EXPLAIN SELECT usage FROM cpu WHERE time > '2030-01-01T00:00:00Z'".to_owned(),
        // 1.6 maps the shards of the outer statement's range (here the same as the inner
        // one's: without it 1.6 lists the other week's shard too, which it reads nothing
        // of, and shardkeeper does not read).
        format!("EXPLAIN SELECT max(usage) FROM (SELECT mean(usage) AS usage FROM cpu WHERE {week} GROUP BY time(1m), host) WHERE {week}"),
        "EXPLAIN SELECT usage INTO other FROM cpu".to_owned(),
        // Refused as the SELECT is, or while parsing.
        "EXPLAIN SELECT mean(usage), usage FROM cpu".to_owned(),
        "EXPLAIN SELECT usage FROM cpu GROUP BY time(1m)".to_owned(),
        "EXPLAIN SELECT top(usage, host, 2), bottom(idle, 3) FROM cpu".to_owned(),
        "EXPLAIN SELECT usage FROM nodb.autogen.cpu".to_owned(),
        "EXPLAIN SELECT usage FROM ex.nope.cpu".to_owned(),
        "EXPLAIN ANALYZE SELECT usage FROM nodb.autogen.cpu".to_owned(),
        "EXPLAIN SHOW DATABASES".to_owned(),
        "EXPLAIN DELETE FROM cpu".to_owned(),
        "EXPLAIN VERBOSE SELECT usage FROM cpu".to_owned(),
        "explain analyze".to_owned(),
        "EXPLAIN SELECT usage FROM cpu tz('Nowhere/Land')".to_owned(),
        // The trace: its spans and labels, in order.
        format!("EXPLAIN ANALYZE SELECT usage, idle FROM cpu WHERE {week}"),
        "EXPLAIN ANALYZE SELECT * FROM cpu WHERE time > 0 GROUP BY *".to_owned(),
        format!("EXPLAIN ANALYZE SELECT count(distinct(usage)) FROM cpu WHERE {week} AND (host = 'a' OR host = 'b') AND usage > 2 GROUP BY host"),
        format!("EXPLAIN ANALYZE SELECT mean(usage) FROM cpu WHERE {week} GROUP BY time(10m, 2m), * ORDER BY time DESC LIMIT 2 tz('Europe/Paris')"),
        format!("EXPLAIN ANALYZE SELECT top(usage, host, 2) FROM cpu WHERE {week}"),
        format!("EXPLAIN ANALYZE SELECT usage FROM cpu, mem WHERE {week}"),
        "EXPLAIN ANALYZE SELECT usage FROM /cpu|mem/ WHERE host = 'a'".to_owned(),
        format!("EXPLAIN ANALYZE SELECT usage FROM (SELECT usage, host FROM cpu WHERE host = 'a' AND {week}) WHERE {week}"),
        format!("EXPLAIN ANALYZE SELECT max(usage) FROM (SELECT mean(usage) AS usage FROM cpu WHERE {week} GROUP BY time(1m), host) WHERE {week}"),
        format!("EXPLAIN ANALYZE SELECT mean(usage) INTO ex.autogen.other FROM cpu WHERE {week} GROUP BY time(1m)"),
    ];
    for q in &in_order {
        let [(s1, theirs), (s2, ours)] = both.servers().map(|addr| ask(addr, q));
        if (s1, explain_shape(&theirs)) != (s2, explain_shape(&ours)) {
            differences.push(format!(
                "{q}\n  influxd:     {s1} {theirs}\n  shardkeeper: {s2} {ours}"
            ));
        }
    }
    // Several calls: 1.6 plans them in any order.
    for q in [
        "EXPLAIN SELECT mean(usage), max(idle) FROM cpu GROUP BY host".to_owned(),
        "EXPLAIN SELECT mean(usage) + max(idle) FROM cpu".to_owned(),
        "EXPLAIN SELECT mean(*) FROM cpu".to_owned(),
        "EXPLAIN SELECT percentile(usage, 50), median(idle), spread(usage) FROM cpu".to_owned(),
        "EXPLAIN SELECT integral(usage), mode(idle), stddev(usage), sum(idle), first(usage), last(idle), count(usage) FROM cpu".to_owned(),
        // A subquery is planned again for each call over it.
        format!("EXPLAIN SELECT max(usage), min(usage) FROM (SELECT mean(usage) AS usage FROM cpu WHERE {week} GROUP BY time(1m), host) WHERE {week}"),
    ] {
        let [(s1, theirs), (s2, ours)] = both.servers().map(|addr| ask(addr, &q));
        let (theirs, ours) = (explain_shape(&theirs), explain_shape(&ours));
        if (s1, reads_in_any_order(&theirs)) != (s2, reads_in_any_order(&ours)) {
            differences.push(format!("{q}\n  influxd:     {s1} {theirs}\n  shardkeeper: {s2} {ours}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // EXPLAIN ANALYZE of an INTO writes nothing, as in 1.6.
    let r = query(both.ours.addr, "ex", "SHOW MEASUREMENTS");
    assert_eq!(
        r.json()["results"][0]["series"][0]["values"],
        serde_json::json!([["cpu"], ["mem"]])
    );
}
