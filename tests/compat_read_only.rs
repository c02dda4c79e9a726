//! Writing statements sent by `GET /query`, compared with real InfluxDB 1.6: 1.x runs
//! them and adds a warning to the result quoting the statement as it normalized it
//! (measurements qualified, passwords redacted, its two spellings of durations); the
//! answers, warnings included, must be the same, statement by statement, in plain and
//! chunked answers.

mod common;
use common::influxd::SideBySide;
use common::{request, urlencode};
use serde_json::Value;
use std::net::SocketAddr;

/// (db=, statement), sent in this order by GET.
const STEPS: &[(&str, &str)] = &[
    ("", "CREATE DATABASE g"),
    (
        "",
        "CREATE DATABASE \"my db\" WITH DURATION 1d REPLICATION 1 SHARD DURATION 90m NAME \"first rp\"",
    ),
    ("", "CREATE DATABASE h WITH DURATION INF"),
    ("", "CREATE DATABASE k WITH NAME \"select\""),
    // SELECT ... INTO, normalized against db= and the default policy.
    (
        "g",
        "SELECT mean(v) INTO m_10m FROM m WHERE time < 1h GROUP BY time(10m), *",
    ),
    ("g", "SELECT v INTO g.autogen.copy FROM m WHERE host = 'a'"),
    (
        "g",
        "SELECT max(v) INTO \"my db\".\"first rp\".:MEASUREMENT FROM /^m$/ GROUP BY host",
    ),
    (
        "g",
        "SELECT max(x) INTO sub FROM (SELECT v AS x FROM m WHERE time < 30m)",
    ),
    (
        "g",
        "SELECT mean(v) INTO filled FROM m WHERE time < 20m GROUP BY time(10m) fill(1.0)",
    ),
    ("g", "SELECT v INTO nowhere..x FROM m"),
    ("", "SELECT v INTO g..y FROM g..m WHERE time < 10m"),
    // Policies, users and privileges.
    (
        "",
        "CREATE RETENTION POLICY week ON g DURATION 7d REPLICATION 1 SHARD DURATION 1d",
    ),
    (
        "",
        "CREATE RETENTION POLICY \"two days\" ON g DURATION 48h REPLICATION 1 DEFAULT",
    ),
    (
        "",
        "CREATE RETENTION POLICY forever ON g DURATION INF REPLICATION 1",
    ),
    (
        "",
        "ALTER RETENTION POLICY week ON g DURATION 14d SHARD DURATION 2d",
    ),
    ("", "ALTER RETENTION POLICY \"two days\" ON g REPLICATION 1"),
    ("", "ALTER RETENTION POLICY week ON g DEFAULT"),
    ("", "CREATE USER bob WITH PASSWORD 'secret'"),
    (
        "",
        "CREATE USER \"Ann-Admin\" WITH PASSWORD 'pa\\'ss' WITH ALL PRIVILEGES",
    ),
    ("", "SET PASSWORD FOR bob = 'other'"),
    ("", "GRANT READ ON g TO bob"),
    ("", "GRANT ALL ON g TO bob"),
    ("", "REVOKE WRITE ON g FROM bob"),
    ("", "GRANT ALL PRIVILEGES TO bob"),
    ("", "REVOKE ALL PRIVILEGES FROM bob"),
    // Continuous queries, kept and quoted normalized.
    (
        "",
        "CREATE CONTINUOUS QUERY cq ON g BEGIN SELECT mean(v) INTO m_1h FROM m GROUP BY time(1h) END",
    ),
    (
        "",
        "CREATE CONTINUOUS QUERY \"cq 2\" ON g RESAMPLE EVERY 2h FOR 4h BEGIN SELECT max(v) INTO g.week.:MEASUREMENT FROM /m/ GROUP BY time(1h), * END",
    ),
    ("", "DROP CONTINUOUS QUERY \"cq 2\" ON g"),
    // Deletions: DELETE is the one writing statement 1.x does not warn about.
    ("g", "DROP SERIES FROM m WHERE host = 'b'"),
    ("g", "DELETE FROM m WHERE time < 10m"),
    ("g", "DROP MEASUREMENT copy"),
    ("", "DROP RETENTION POLICY forever ON g"),
    ("", "DROP USER bob"),
    ("", "DROP DATABASE h"),
    // 1.x drops a policy of a database that is not there without a word (but the warning).
    ("", "DROP RETENTION POLICY nope ON nodb"),
    // A statement that fails carries its error alone; reading statements no warning.
    ("", "ALTER RETENTION POLICY nope ON g DURATION 1h"),
    ("", "CREATE USER \"Ann-Admin\" WITH PASSWORD 'x'"),
    ("", "DROP SERIES FROM m WHERE v = 1"),
    ("g", "SHOW RETENTION POLICIES"),
    ("", "CREATE DATABASE x; SHOW DATABASES; DROP DATABASE x"),
];

fn get(addr: SocketAddr, db: &str, q: &str, extra: &str) -> common::Response {
    let path = format!("/query?db={}&q={}{extra}", urlencode(db), urlencode(q));
    request(addr, "GET", &path, &[], b"")
}

/// Each line of a (maybe chunked) answer, as JSON.
fn lines(r: &common::Response) -> (u16, Vec<Value>) {
    let body = String::from_utf8_lossy(&r.body);
    let lines = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    (r.status, lines)
}

fn warnings(answer: &[Value]) -> usize {
    answer
        .iter()
        .flat_map(|l| l["results"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["messages"].as_array().map(Vec::len))
        .sum()
}

#[test]
fn writing_statements_sent_by_get_carry_influxdbs_warning() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let servers = both.servers();
    both.create_database("g");
    let mut data = String::new();
    for i in 0..12i64 {
        for host in ["a", "b"] {
            data.push_str(&format!("m,host={host} v={i}.5 {}\n", i * 300_000_000_000));
        }
    }
    both.write("g", &data);
    let mut warned = 0;
    for (db, statement) in STEPS {
        let answers = servers.map(|a| lines(&get(a, db, statement, "")));
        assert_eq!(answers[0], answers[1], "{statement}");
        warned += warnings(&answers[1].1);
    }
    // Chunked: the warning rides on the statement's line.
    for (db, statement) in [
        ("", "CREATE DATABASE g"),
        ("g", "SELECT v INTO chunked FROM m WHERE time < 20m"),
    ] {
        let answers = servers.map(|a| lines(&get(a, db, statement, "&chunked=true&chunk_size=1")));
        assert_eq!(answers[0], answers[1], "chunked {statement}");
        warned += warnings(&answers[1].1);
    }
    // The comparison is of something: most statements above warn.
    assert!(warned >= 25, "only {warned} warnings");
    // POST never warns, even with the query in the URL.
    for a in servers {
        let path = format!("/query?q={}", urlencode("CREATE DATABASE g"));
        let answer = lines(&request(a, "POST", &path, &[], b""));
        assert_eq!(warnings(&answer.1), 0, "{answer:?}");
        assert_eq!(answer.0, 200);
    }
}
