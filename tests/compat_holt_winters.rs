//! holt_winters() and holt_winters_with_fit() compared with real InfluxDB 1.6: trends,
//! seasons (S > 1), no season (S = 0 or 1), float and integer fields, GROUP BY tags,
//! fill(), offsets, a time range that cuts windows, LIMIT, descending order, and the
//! errors for bad arguments. The answers are equal to the last bit: shardkeeper follows
//! 1.x's fit (its Nelder-Mead simplex and its Go `math.Pow`) float operation for float
//! operation.

mod common;
use common::influxd::SideBySide;
use common::query;

const DB: &str = "hw";
const T0: i64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z
const SECOND: i64 = 1_000_000_000;

/// `trend`: a rising line with a wobble, every 10 s for 40 minutes, for hosts a and b
/// (b has a gap of four minutes); `season`: a pattern repeating every four minutes on a
/// slow rise, as a float and an integer field; `sparse`: host a0 with one window only,
/// then hosts b1 and c2 with many.
fn data() -> String {
    let mut lines = String::new();
    for i in 0..240i64 {
        let t = T0 + i * 10 * SECOND;
        let wobble = [0.0, 0.7, -0.4, 1.3, -0.9, 0.2][(i % 6) as usize];
        lines.push_str(&format!(
            "trend,host=a v={},n={}i {t}\n",
            10.0 + 0.5 * i as f64 + wobble,
            3 * i + (i % 7)
        ));
        if !(100..124).contains(&i) {
            lines.push_str(&format!(
                "trend,host=b v={} {t}\n",
                200.0 - 0.25 * i as f64 + wobble * 3.0
            ));
        }
        let minute = i / 6;
        let pattern = [12.0, 30.0, 21.0, 5.0][(minute % 4) as usize];
        lines.push_str(&format!(
            "season,host=s v={},n={}i {t}\n",
            100.0 + pattern + minute as f64 * 1.5 + wobble,
            (pattern as i64) * 10 + minute * 3 + i % 3
        ));
        let sparse_host = if i < 3 {
            "a0"
        } else if i % 2 == 0 {
            "b1"
        } else {
            "c2"
        };
        lines.push_str(&format!(
            "sparse,host={sparse_host} v={} {t}\n",
            (i % 13) as f64 * 1.5
        ));
    }
    lines
}

fn range(from_s: i64, to_s: i64) -> String {
    format!(
        "time >= {} AND time < {}",
        T0 + from_s * SECOND,
        T0 + to_s * SECOND
    )
}

fn queries() -> Vec<String> {
    let all = range(0, 2400);
    let cut = range(45, 1_500);
    let shapes = [
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE host = 'a' AND {all} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(mean(v), 5, 0) FROM trend WHERE host = 'a' AND {all} GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 3, 1) FROM trend WHERE host = 'a' AND {all} GROUP BY time(2m)",
        "SELECT holt_winters(first(n), 6, 0) FROM trend WHERE host = 'a' AND {all} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(sum(n), 4, 0) FROM trend WHERE host = 'a' AND {all} GROUP BY time(5m)",
        "SELECT holt_winters(mean(v), 8, 4) FROM season WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(mean(v), 8, 4) FROM season WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters(max(n), 6, 4) FROM season WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(last(n), 5, 2) FROM season WHERE {all} GROUP BY time(2m)",
        "SELECT holt_winters(mean(v), 4, 8) FROM season WHERE {all} GROUP BY time(30s)",
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE {all} GROUP BY time(1m), host",
        "SELECT holt_winters_with_fit(min(v), 3, 0) FROM trend WHERE {all} GROUP BY time(2m), *",
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE host = 'b' AND {all} GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE host = 'b' AND {all} GROUP BY time(1m) fill(0)",
        "SELECT holt_winters_with_fit(mean(v), 5, 0) FROM trend WHERE host = 'b' AND {all} GROUP BY time(1m) fill(previous)",
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE host = 'b' AND {all} GROUP BY time(1m) fill(linear)",
        "SELECT holt_winters_with_fit(mean(v), 5, 0) FROM trend WHERE host = 'b' AND {all} GROUP BY time(1m) fill(none)",
        "SELECT holt_winters(count(v), 4, 0) FROM trend WHERE host = 'b' AND {all} GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE host = 'a' AND {cut} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(mean(v), 5, 4) FROM season WHERE {cut} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(mean(v), 5, 0) FROM trend WHERE host = 'a' AND {cut} GROUP BY time(1m, 20s)",
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE host = 'a' AND {all} GROUP BY time(1m) ORDER BY time DESC",
        "SELECT holt_winters_with_fit(mean(v), 5, 0) FROM trend WHERE host = 'a' AND {all} GROUP BY time(1m) LIMIT 4 OFFSET 2",
        "SELECT holt_winters(mean(v), 3, 0) AS forecast, holt_winters_with_fit(mean(v), 2, 0) FROM trend WHERE host = 'a' AND {cut} GROUP BY time(3m)",
        "SELECT holt_winters(mean(v), 3, 0), mean(v) FROM trend WHERE host = 'a' AND {cut} GROUP BY time(3m)",
        "SELECT max(v), holt_winters_with_fit(mean(v), 3, 0) FROM trend WHERE host = 'b' AND {all} GROUP BY time(2m) fill(none)",
        "SELECT holt_winters(mean(v), 4, 0) FROM sparse WHERE {all} GROUP BY time(1m), host",
        "SELECT holt_winters(mean(v), 4, 0) FROM sparse WHERE host != 'a0' AND {all} GROUP BY time(1m), host",
        "SELECT holt_winters(mean(v), 2, 0) FROM trend WHERE host = 'a' AND time >= 1700000000000000000 AND time < 1700000060000000000 GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 2, 0) FROM trend WHERE host = 'a' AND time >= 1700000000000000000 AND time < 1700000120000000000 GROUP BY time(1m)",
        "SELECT holt_winters(mean(nothing), 2, 0) FROM trend WHERE {all} GROUP BY time(1m)",
        // Refused, with 1.x's words.
        "SELECT holt_winters(v, 5, 0) FROM trend WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 5, 0) FROM trend WHERE {all}",
        "SELECT holt_winters(mean(v), 0, 0) FROM trend WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 5, -1) FROM trend WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 5) FROM trend WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(mean(v), 5.5, 0) FROM trend WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters_with_fit(mean(v), 5, 'x') FROM trend WHERE {all} GROUP BY time(1m)",
        "SELECT holt_winters(mean(v), 5, 0), v FROM trend WHERE {all} GROUP BY time(1m)",
    ];
    shapes
        .iter()
        .map(|s| s.replace("{all}", &all).replace("{cut}", &cut))
        .collect()
}

#[test]
fn holt_winters_forecasts_as_influxdb_does() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let servers = both.servers();
    both.create_database(DB);
    both.write(DB, &data());
    let (mut forecasts, mut errors) = (0, 0);
    let mut different = Vec::new();
    for q in queries() {
        let answers = servers.map(|a| {
            let r = query(a, DB, &q);
            (r.status, r.json())
        });
        if answers[0] != answers[1] {
            different.push(format!(
                "{q}\n  influxd: {} {}\n  ours:    {} {}",
                answers[0].0, answers[0].1, answers[1].0, answers[1].1
            ));
        }
        let result = &answers[1].1["results"][0];
        if result["error"].is_string() {
            errors += 1;
        }
        forecasts += result["series"].as_array().map_or(0, |s| {
            s.iter()
                .map(|s| s["values"].as_array().map_or(0, Vec::len))
                .sum()
        });
    }
    assert!(different.is_empty(), "{}", different.join("\n"));
    // Not an empty comparison: forecasts were made, and the bad arguments refused.
    assert!(forecasts > 150, "{forecasts} points");
    assert_eq!(errors, 8);
}
