//! GROUP BY time() in a tz() zone across a change of its UTC offset, compared with real
//! InfluxDB 1.6: windows start at local midnight (or the local hour) on both sides of the
//! change, so the ones around it are shorter or longer than the interval, and fill()
//! steps through them as 1.x does. (mean() here reads one series per group: over several,
//! 1.x combines per-series means, whose rounding is not reproduced yet.)

mod common;
use common::influxd::SideBySide;
use common::query;

const DB: &str = "zones";
const HOUR: i64 = 3_600_000_000_000;

/// Points every 50 minutes (so windows of an hour or more hold several, some none)
/// around the 2024 changes of Chicago (March 10, November 3), London (March 31,
/// October 27) and Adelaide (April 7, October 6), for two hosts.
fn data() -> String {
    let days: [(i64, i64); 6] = [
        (1_709_856_000, 5), // 2024-03-08, five days
        (1_711_670_400, 4), // 2024-03-29
        (1_712_275_200, 3), // 2024-04-05
        (1_728_000_000, 3), // 2024-10-04
        (1_729_814_400, 3), // 2024-10-25
        (1_730_419_200, 4), // 2024-11-01
    ];
    let mut lines = String::new();
    for (start, n) in days {
        let start = start * 1_000_000_000;
        let mut t = start;
        let mut i = 0i64;
        while t < start + n * 24 * HOUR {
            lines.push_str(&format!("m,host=a v={}.5 {t}\n", i % 17));
            if i % 3 != 0 {
                lines.push_str(&format!("m,host=b v={} {t}\n", i % 5));
            }
            t += 50 * 60_000_000_000;
            i += 1;
        }
    }
    lines
}

/// Ranges around each change.
const RANGES: &[(&str, &str)] = &[
    (
        "time >= '2024-03-08T00:00:00Z' AND time < '2024-03-13T00:00:00Z'",
        "America/Chicago",
    ),
    (
        "time >= '2024-03-09T12:00:00Z' AND time < '2024-03-11T12:00:00Z'",
        "America/Chicago",
    ),
    (
        "time >= '2024-11-01T00:00:00Z' AND time < '2024-11-05T00:00:00Z'",
        "America/Chicago",
    ),
    (
        "time >= '2024-03-29T00:00:00Z' AND time < '2024-04-02T00:00:00Z'",
        "Europe/London",
    ),
    (
        "time >= '2024-10-25T00:00:00Z' AND time < '2024-10-28T00:00:00Z'",
        "Europe/London",
    ),
    (
        "time >= '2024-04-05T00:00:00Z' AND time < '2024-04-08T00:00:00Z'",
        "Australia/Adelaide",
    ),
    (
        "time >= '2024-10-04T00:00:00Z' AND time < '2024-10-07T00:00:00Z'",
        "Australia/Adelaide",
    ),
];

const SHAPES: &[&str] = &[
    "SELECT count(v) FROM m WHERE {range} GROUP BY time(1d) tz('{zone}')",
    "SELECT mean(v), max(v) FROM m WHERE {range} GROUP BY time(1d), host tz('{zone}')",
    "SELECT sum(v) FROM m WHERE {range} GROUP BY time(1d) fill(0) tz('{zone}')",
    "SELECT count(v) FROM m WHERE {range} GROUP BY time(12h) tz('{zone}')",
    "SELECT count(v) FROM m WHERE {range} GROUP BY time(2h) fill(none) tz('{zone}')",
    "SELECT count(v) FROM m WHERE {range} GROUP BY time(1h) tz('{zone}')",
    "SELECT mean(v) FROM m WHERE host = 'b' AND {range} GROUP BY time(1d, 3h) tz('{zone}')",
    "SELECT mean(v) FROM m WHERE host = 'a' AND {range} GROUP BY time(1d) fill(previous) tz('{zone}')",
    "SELECT mean(v) FROM m WHERE host = 'a' AND {range} GROUP BY time(3h) fill(linear) tz('{zone}')",
    "SELECT count(v) FROM m WHERE {range} GROUP BY time(1d) ORDER BY time DESC tz('{zone}')",
    "SELECT max(v) FROM m WHERE host = 'a' AND {range} GROUP BY time(1d) tz('{zone}')",
    "SELECT derivative(mean(v), 1h) FROM m WHERE host = 'a' AND {range} GROUP BY time(1d) tz('{zone}')",
    "SELECT median(v), last(v) FROM m WHERE {range} GROUP BY time(1d), host LIMIT 3 tz('{zone}')",
];

#[test]
fn windows_across_a_change_of_utc_offset_are_placed_as_influxdb_places_them() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let servers = both.servers();
    both.create_database(DB);
    both.write(DB, &data());
    let mut rows = 0;
    for (range, zone) in RANGES {
        for shape in SHAPES {
            let q = shape.replace("{range}", range).replace("{zone}", zone);
            let answers = servers.map(|a| {
                let r = query(a, DB, &q);
                (r.status, r.json())
            });
            assert_eq!(answers[0], answers[1], "{q}");
            let result = &answers[1].1["results"][0];
            assert!(result["error"].is_null(), "{q}: {result}");
            rows += result["series"].as_array().map_or(0, |s| {
                s.iter()
                    .map(|s| s["values"].as_array().map_or(0, Vec::len))
                    .sum()
            });
        }
    }
    // Not an empty comparison: the windows held rows.
    assert!(rows > 500, "{rows} rows");
}
