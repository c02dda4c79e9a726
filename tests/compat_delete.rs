//! DELETE, DROP SERIES and DROP MEASUREMENT compared with real InfluxDB 1.6: the same
//! writes and deletes go to influxd and to shardkeeper, and after each step the answers to
//! SELECTs and to SHOW MEASUREMENTS / SERIES / TAG VALUES / FIELD KEYS must be the same.

mod common;
use common::influxd::SideBySide;
use common::{query, request, Daemon, Response};
use serde_json::Value;
use std::net::SocketAddr;

const DB: &str = "del";

/// Points in two measurements' worth of shards (one day apart: two shard groups), every
/// field type, several tag sets.
fn data() -> String {
    let mut lines = String::new();
    for day in 0..2i64 {
        for t in 0..6i64 {
            let time = day * 86_400_000_000_000 + t * 1_000_000_000 + 1_000_000_000;
            for host in ["a", "b", "c"] {
                let region = if host == "c" { "" } else { ",region=eu" };
                lines.push_str(&format!(
                    "cpu,host={host}{region} usage={}.5,n={t}i,up={},note=\"t{t}\" {time}\n",
                    t + day,
                    t % 2 == 0
                ));
            }
            lines.push_str(&format!("mem,host=a free={}i {time}\n", 100 + t));
            lines.push_str(&format!("mem,host=b free={}i {time}\n", 200 + t));
            lines.push_str(&format!("disk,host=a,dev=sda used={}.25 {time}\n", t));
            lines.push_str(&format!("disk,host=b,dev=sdb used={}.75 {time}\n", t));
        }
    }
    lines
}

/// What the index and the data look like.
const CHECKS: &[&str] = &[
    "SELECT * FROM cpu GROUP BY *",
    "SELECT * FROM mem GROUP BY *",
    "SELECT * FROM disk GROUP BY *",
    "SELECT count(usage) FROM cpu",
    "SHOW MEASUREMENTS",
    "SHOW SERIES",
    "SHOW TAG VALUES WITH KEY = host",
    "SHOW TAG VALUES FROM cpu WITH KEY = region",
    "SHOW FIELD KEYS",
];

/// Each step, then every check. A step is a statement or (starting with "write ") lines.
const STEPS: &[&str] = &[
    // A delete within a time range that leaves the series some points.
    "DELETE FROM cpu WHERE host = 'a' AND time < 3s",
    // One that empties a series in one shard only.
    "DELETE FROM cpu WHERE host = 'b' AND time < 86400s",
    // Regex sources and regex tag conditions.
    "DELETE FROM /^di/ WHERE dev =~ /sd[a]/ AND time >= 86402s AND time <= 86404s",
    // Without FROM: every measurement.
    "DELETE WHERE host = 'b' AND time > 86404s",
    // Field conditions are refused and change nothing.
    "DELETE FROM cpu WHERE usage > 2",
    "DELETE FROM cpu WHERE host = 'c' OR n = 1",
    // Points written after a delete of their range are kept.
    "write cpu,host=a,region=eu usage=42.5,n=42i,up=true,note=\"new\" 1000000000",
    "DELETE FROM cpu WHERE region = '' AND time > 2s AND time < 5s",
    // DROP SERIES: no time allowed; without WHERE, every series of the measurement.
    "DROP SERIES FROM cpu WHERE host = 'a' AND time > 0",
    "DROP SERIES FROM disk WHERE host = 'b'",
    "DROP SERIES WHERE dev = 'nothing'",
    // DROP MEASUREMENT forgets the field types: a new type is accepted after it.
    "DROP MEASUREMENT mem",
    "write mem,host=z free=\"text\" 3000000000",
    "DROP MEASUREMENT nothing",
    "DELETE FROM nothing",
    // A delete that empties a measurement takes it out of SHOW MEASUREMENTS but keeps its
    // field types (a write of another type is refused, as influxd does; in one request
    // with an accepted point of the same series, since influxd 1.6 lists the series of a
    // refused point).
    "DELETE FROM disk",
    "write disk,host=b,dev=sdb used=\"text\" 2000000000\ndisk,host=b,dev=sdb used=7.5 3000000000",
    "DELETE FROM cpu WHERE time >= 86400s",
];

fn normalized(r: &Response) -> (u16, Value) {
    let mut body = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    // influxd names its shard in a refused delete ("shard 1: ..."); shard ids differ.
    if let Some(error) = body["results"][0]["error"].as_str() {
        let error = match error.split_once(": ") {
            Some((shard, rest)) if shard.starts_with("shard ") => rest.to_owned(),
            _ => error.to_owned(),
        };
        body["results"][0]["error"] = Value::from(error);
    }
    (r.status, body)
}

fn run(addr: SocketAddr, step: &str) -> (u16, Value) {
    match step.strip_prefix("write ") {
        Some(lines) => normalized(&request(
            addr,
            "POST",
            &format!("/write?db={DB}"),
            &[],
            lines.as_bytes(),
        )),
        None => normalized(&query(addr, DB, step)),
    }
}

#[test]
fn deletes_answer_as_influxdb_does() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let servers = both.servers();
    both.create_database(DB);
    both.write(DB, &data());
    let mut compared = 0;
    for step in STEPS {
        let answers = servers.map(|a| run(a, step));
        assert_eq!(answers[0], answers[1], "step {step}");
        for check in CHECKS {
            let answers = servers.map(|a| run(a, check));
            assert_eq!(answers[0], answers[1], "{check}\nafter {step}");
            compared += 1;
        }
    }
    // Errors shardkeeper must word as influxd does.
    for q in [
        "DROP SERIES FROM cpu WHERE time > 0",
        "DELETE FROM autogen.cpu WHERE time > 0",
        "DROP MEASUREMENT",
    ] {
        let answers = servers.map(|a| run(a, q));
        assert_eq!(answers[0], answers[1], "{q}");
    }
    for q in [
        "DELETE FROM cpu",
        "DROP SERIES FROM cpu",
        "DROP MEASUREMENT cpu",
    ] {
        let answers = servers.map(|a| normalized(&query(a, "nodb", q)));
        assert_eq!(answers[0], answers[1], "{q} on a missing database");
    }
    assert_eq!(compared, STEPS.len() * CHECKS.len());
}

/// influxd 1.6 (inmem index) keeps a measurement in SHOW MEASUREMENTS and SHOW FIELD KEYS
/// after DROP SERIES removed its last series, though a DELETE that does the same removes
/// it (fixed in later 1.x). shardkeeper answers as for the DELETE.
#[test]
fn a_measurement_whose_last_series_is_dropped_is_no_longer_listed() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    assert_eq!(query(ours.addr, "", "CREATE DATABASE d").status, 200);
    let body = b"cpu,host=a v=1 1000000000\nmem,host=a free=1i 1000000000";
    assert_eq!(
        request(ours.addr, "POST", "/write?db=d", &[], body).status,
        204
    );
    assert_eq!(query(ours.addr, "d", "DROP SERIES FROM cpu").status, 200);
    let names = query(ours.addr, "d", "SHOW MEASUREMENTS").json();
    assert_eq!(
        names["results"][0]["series"][0]["values"],
        serde_json::json!([["mem"]])
    );
    let fields = query(ours.addr, "d", "SHOW FIELD KEYS").json();
    assert_eq!(fields["results"][0]["series"].as_array().unwrap().len(), 1);
    assert_eq!(fields["results"][0]["series"][0]["name"], "mem");
}

/// As influxd 1.6.7 answers (checked against one with auth on): DELETE and DROP SERIES
/// need WRITE on the database, DROP MEASUREMENT an admin.
#[test]
fn deletes_need_write_and_drop_measurement_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(dir.path(), "auth_enabled = true\n");
    let q = |statement: &str, user: &str| {
        let path = format!(
            "/query?db=app&u={user}&p=secret-pw&q={}",
            common::urlencode(statement)
        );
        request(ours.addr, "POST", &path, &[], b"")
    };
    let admin = [
        "CREATE USER root WITH PASSWORD 'secret-pw' WITH ALL PRIVILEGES",
        "CREATE DATABASE app",
        "CREATE USER r WITH PASSWORD 'secret-pw'",
        "CREATE USER w WITH PASSWORD 'secret-pw'",
        "GRANT READ ON app TO r",
        "GRANT WRITE ON app TO w",
    ];
    for statement in admin {
        assert_eq!(q(statement, "root").status, 200, "{statement}");
    }
    let write = request(
        ours.addr,
        "POST",
        "/write?db=app&u=root&p=secret-pw",
        &[],
        b"m,k=a v=1 1000000000\nm,k=b v=2 1000000000",
    );
    assert_eq!(write.status, 204);
    let refused = |user: &str, statement: &str, needs: &str| {
        let r = q(statement, user);
        assert_eq!(r.status, 403, "{user}: {statement}");
        assert_eq!(
            r.json()["error"],
            format!("error authorizing query: {user} not authorized to execute statement '{statement}', requires {needs}")
        );
    };
    refused("r", "DELETE FROM m WHERE time > 0", "WRITE on app");
    refused("r", "DROP SERIES FROM m", "WRITE on app");
    refused("r", "DROP MEASUREMENT m", "admin privilege");
    refused("w", "DROP MEASUREMENT m", "admin privilege");
    for statement in [
        "DELETE FROM m WHERE k = 'a'",
        "DROP SERIES FROM m WHERE k = 'b'",
    ] {
        let r = q(statement, "w");
        assert_eq!(r.status, 200);
        assert!(r.json()["results"][0]["error"].is_null(), "{statement}");
    }
    let left = common::first_result(&q("SELECT count(v) FROM m", "root"));
    assert!(left["series"].is_null(), "{left}");
    assert_eq!(q("DROP MEASUREMENT m", "root").status, 200);
}
