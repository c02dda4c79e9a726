//! `SELECT ... INTO` compared with real InfluxDB 1.6: the same points and the same INTO
//! statements go to influxd and to shardkeeper; each statement's answer (the `written`
//! count, or the error) and then what the targets hold must be the same.

mod common;
use common::influxd::SideBySide;
use common::{query, request};
use serde_json::Value;

const DB: &str = "src";

/// Two hosts (one also in a region), every field type, 20 minutes of points 30 s apart.
fn data() -> String {
    let mut lines = String::new();
    for i in 0..40i64 {
        let time = i * 30_000_000_000;
        for (host, region) in [("a", ",region=eu"), ("b", "")] {
            lines.push_str(&format!(
                "cpu,host={host}{region} usage={}.5,n={i}i,up={},note=\"n{i}\" {time}\n",
                i % 7,
                i % 3 == 0
            ));
        }
        lines.push_str(&format!("mem,host=a free={}i {time}\n", 100 + i % 5));
    }
    lines
}

/// Each statement, then what its target holds.
const STEPS: &[(&str, &[&str])] = &[
    (
        "SELECT mean(usage) INTO cpu_1m FROM cpu WHERE time >= 0 AND time < 10m GROUP BY time(1m)",
        &["SELECT * FROM cpu_1m GROUP BY *"],
    ),
    (
        "SELECT mean(usage), max(n), count(up) INTO cpu_5m FROM cpu WHERE time >= 0 AND time < 20m GROUP BY time(5m), *",
        &["SELECT * FROM cpu_5m GROUP BY *", "SHOW TAG KEYS FROM cpu_5m"],
    ),
    (
        "SELECT * INTO cpu_raw FROM cpu WHERE time < 3m",
        &["SELECT * FROM cpu_raw GROUP BY *", "SHOW FIELD KEYS FROM cpu_raw", "SHOW TAG KEYS FROM cpu_raw"],
    ),
    (
        "SELECT * INTO cpu_tagged FROM cpu WHERE time < 3m GROUP BY *",
        &["SELECT * FROM cpu_tagged GROUP BY *", "SHOW FIELD KEYS FROM cpu_tagged"],
    ),
    (
        "SELECT max(usage) INTO cpu_max FROM cpu",
        &["SELECT * FROM cpu_max"],
    ),
    (
        "SELECT max(usage) INTO cpu_max_in_range FROM cpu WHERE time >= 5m AND time < 15m",
        &["SELECT * FROM cpu_max_in_range"],
    ),
    (
        "SELECT usage * 2 AS double, note INTO cpu_expr FROM cpu WHERE host = 'a' AND time < 2m",
        &["SELECT * FROM cpu_expr"],
    ),
    (
        "SELECT last(*) INTO dst.autogen.last_of FROM cpu GROUP BY host",
        &["SELECT * FROM dst.autogen.last_of GROUP BY *"],
    ),
    (
        "SELECT mean(*) INTO dst.week.:MEASUREMENT FROM /^(cpu|mem)$/ WHERE time < 20m GROUP BY time(10m), *",
        &[
            "SELECT * FROM dst.week.cpu GROUP BY *",
            "SELECT * FROM dst.week.mem GROUP BY *",
            "SHOW MEASUREMENTS ON dst",
        ],
    ),
    (
        "SELECT sum(free) INTO mem_sum FROM mem WHERE time >= 30m",
        &["SELECT * FROM mem_sum"],
    ),
    ("SELECT usage INTO nodb..x FROM cpu", &[]),
    ("SELECT usage INTO dst.nopolicy.x FROM cpu", &[]),
];

fn normalized(r: &common::Response) -> (u16, Value) {
    (r.status, r.json())
}

#[test]
fn select_into_writes_what_influxdb_writes_and_answers_the_same_count() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let servers = both.servers();
    both.create_database(DB);
    both.create_database("dst");
    both.execute("CREATE RETENTION POLICY week ON dst DURATION 0s REPLICATION 1");
    both.write(DB, &data());
    let mut written = 0;
    for (statement, checks) in STEPS {
        let answers = servers.map(|a| normalized(&query(a, DB, statement)));
        assert_eq!(answers[0], answers[1], "{statement}");
        written += answers[1].1["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0);
        for check in *checks {
            let answers = servers.map(|a| normalized(&query(a, DB, check)));
            assert_eq!(answers[0], answers[1], "{check}\nafter {statement}");
        }
    }
    // The comparison above is of something: most statements wrote points.
    assert!(written >= 50, "only {written} points written");
    // With epoch=, the count's time is the epoch's zero. (POST: over GET, both add a
    // warning that a statement that writes should be POSTed: `tests/compat_read_only.rs`.)
    let body = format!(
        "db={DB}&epoch=s&q={}",
        common::urlencode("SELECT n INTO n_copy FROM cpu WHERE time < 1m")
    );
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let answers =
        servers.map(|a| normalized(&request(a, "POST", "/query", &form, body.as_bytes())));
    assert_eq!(answers[0], answers[1]);
}
