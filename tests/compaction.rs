//! Heads written out as column files: answers do not change, memory and the data log stay
//! bounded, and restarts read the files plus only the log after them.

mod common;
use common::{files_with_extension, query, request, shard_dirs, wait_until, Daemon};

/// A node on a fresh data directory with `config`, and database `c` created. The temp
/// directory is returned so that it lives as long as the test.
fn node_with_database(config: &str) -> (tempfile::TempDir, std::path::PathBuf, Daemon) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let daemon = Daemon::start_with_config(&data, config);
    assert_eq!(query(daemon.addr, "", "CREATE DATABASE c").status, 200);
    (root, data, daemon)
}

fn count_files(dir: &std::path::Path, ext: &str) -> usize {
    files_with_extension(dir, ext).len()
}

#[test]
fn flushed_heads_answer_the_same_and_survive_restart() {
    let config = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";
    let (_root, data, daemon) = node_with_database(config);
    // 200 series x 300 times, types of every kind, in batches.
    for t in 0..300u64 {
        let body: String = (0..200)
            .map(|h| {
                format!(
                    "m,host=h{h} f={}.5,i={}i,s=\"v{t}\",b={} {}\n",
                    t + h,
                    t * h,
                    t % 2 == 0,
                    (t + 1) * 1_000_000_000
                )
            })
            .collect();
        assert_eq!(
            request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
            204
        );
    }
    // Overwrite some points after they were flushed: the newer write wins.
    let body: String = (0..200)
        .map(|h| format!("m,host=h{h} f=-1 1000000000\n"))
        .collect();
    assert_eq!(
        request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
        204
    );

    let shard = &shard_dirs(&data)[0];
    assert!(
        count_files(shard, "col") >= 2,
        "heads were written out as column files"
    );
    let q = "SELECT * FROM m WHERE host = 'h7' OR host = 'h150'";
    let before = query(daemon.addr, "c", q).json();
    let rows = before["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 600);
    // Rows of equal time come in series-key order ("h150" sorts before "h7").
    assert_eq!(
        rows[0],
        serde_json::json!(["1970-01-01T00:00:01Z", true, -1, "h150", 0, "v0"])
    );
    assert_eq!(
        rows[599],
        serde_json::json!(["1970-01-01T00:05:00Z", false, 306.5, "h7", 2093, "v299"])
    );
    let counts = query(daemon.addr, "c", "SELECT f FROM m").json();
    assert_eq!(
        counts["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        60_000
    );
    assert!(daemon.stop().success());

    // The log keeps only what no column file covers.
    let segments = count_files(&shard.join("log"), "seg");
    assert!(
        segments <= 3,
        "covered segments were removed ({segments} left)"
    );
    let daemon = Daemon::start_with_config(&data, config);
    assert_eq!(query(daemon.addr, "c", q).json(), before);
    daemon.kill9();
    let daemon = Daemon::start_with_config(&data, config);
    assert_eq!(
        query(daemon.addr, "c", q).json(),
        before,
        "after kill -9 too"
    );
    daemon.stop();
}

#[test]
fn many_flushes_are_merged_into_few_files_without_losing_points() {
    let config = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";
    let (_root, data, daemon) = node_with_database(config);
    for t in 0..1000u64 {
        let body: String = (0..200)
            .map(|h| format!("m,host=h{h} f={t}.25,g={h}i {}\n", (t + 1) * 1_000_000_000))
            .collect();
        assert_eq!(
            request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
            204
        );
    }
    let shard = &shard_dirs(&data)[0];
    // Merges run on their own thread: one may still be under way when the last write is
    // acknowledged.
    wait_until("column files merged into fewer than 8", || {
        count_files(shard, "col") < 8
    });
    assert!(
        count_files(shard, "col") >= 1,
        "the points are in column files"
    );
    let check = |addr| {
        let r = query(addr, "c", "SELECT f, g FROM m WHERE host = 'h42'").json();
        let rows = r["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(rows.len(), 1000, "every point once");
        assert_eq!(
            rows[999],
            serde_json::json!(["1970-01-01T00:16:40Z", 999.25, 42])
        );
    };
    check(daemon.addr);
    daemon.kill9();
    let daemon = Daemon::start_with_config(&data, config);
    check(daemon.addr);
    daemon.stop();
}

#[test]
fn an_idle_shard_is_written_out_so_a_crash_has_little_to_replay() {
    let config = "idle_flush_seconds = 1\n";
    let (_root, data, daemon) = node_with_database(config);
    let body: String = (0..500)
        .map(|i| format!("m,host=h{} v={i} {}\n", i % 5, (i + 1) * 1_000_000_000))
        .collect();
    assert_eq!(
        request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
        204
    );
    let shard = &shard_dirs(&data)[0];
    // The flush happens in the background once the shard has been idle.
    wait_until("the idle shard to be flushed", || {
        count_files(shard, "col") > 0
    });
    daemon.kill9();
    let daemon = Daemon::start_with_config(&data, config);
    let r = query(daemon.addr, "c", "SELECT count(v) FROM m").json();
    assert_eq!(r["results"][0]["series"][0]["values"][0][1], 500);
    daemon.stop();
}

/// Reads that take shortcuts (tag index, series judged once, LIMIT reading only what it
/// shows, parts concatenated when they do not overlap, both cores) answer as a model of
/// what was written says, over column files, overwrites in later files and the head.
#[test]
fn reads_over_files_and_head_agree_with_a_model_of_the_writes() {
    use std::collections::BTreeMap;
    let config = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";
    let (_root, data, daemon) = node_with_database(config);
    let second = 1_000_000_000i64;
    // (host, time in seconds) → value; integer-valued floats keep sums exact.
    let mut model: BTreeMap<(u32, i64), i64> = BTreeMap::new();
    let write = |model: &mut BTreeMap<(u32, i64), i64>,
                 hosts: std::ops::Range<u32>,
                 times: std::ops::Range<i64>,
                 base: i64| {
        for t in times {
            let body: String = hosts
                .clone()
                .map(|h| {
                    let v = base + t * 10 + i64::from(h);
                    model.insert((h, t), v);
                    format!("m,host=h{h},pool=p{} f={v} {}\n", h % 3, t * second)
                })
                .collect();
            let r = request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes());
            assert_eq!(r.status, 204);
        }
    };
    write(&mut model, 0..120, 0..400, 0);
    // Overwrites of early times, after those were flushed, some in the head at the end.
    write(&mut model, 0..10, 0..150, 100_000);
    assert!(count_files(&shard_dirs(&data)[0], "col") >= 2);

    let values = |q: &str| -> Vec<serde_json::Value> {
        let r = query(daemon.addr, "c", q);
        assert_eq!(r.status, 200, "{q}: {}", String::from_utf8_lossy(&r.body));
        let j = r.json();
        assert!(j["results"][0]["error"].is_null(), "{q}: {j}");
        j["results"][0]["series"]
            .as_array()
            .map_or(Vec::new(), |s| {
                s.iter()
                    .flat_map(|s| s["values"].as_array().unwrap().clone())
                    .collect()
            })
    };
    let of = |h: u32| {
        model
            .iter()
            .filter(move |((host, _), _)| *host == h)
            .map(|((_, t), v)| (*t, *v))
    };

    // The last rows of one host, newest first.
    let last: Vec<(i64, i64)> = of(3).rev().take(3).collect();
    let got = values("SELECT f FROM m WHERE host = 'h3' ORDER BY time DESC LIMIT 3 OFFSET 0");
    let got: Vec<(i64, i64)> = got
        .iter()
        .map(|r| (0, r[1].as_f64().unwrap() as i64))
        .collect();
    assert_eq!(got, last.iter().map(|&(_, v)| (0, v)).collect::<Vec<_>>());
    // The first rows of one host: overwritten values win.
    let got = values("SELECT f FROM m WHERE host = 'h4' LIMIT 2 OFFSET 1");
    let want: Vec<i64> = of(4).skip(1).take(2).map(|(_, v)| v).collect();
    assert_eq!(
        got.iter()
            .map(|r| r[1].as_f64().unwrap() as i64)
            .collect::<Vec<_>>(),
        want
    );
    // Aggregates over two hosts named by OR.
    let both: Vec<i64> = of(5).chain(of(50)).map(|(_, v)| v).collect();
    let got = values("SELECT count(f), sum(f), max(f) FROM m WHERE host = 'h5' OR host = 'h50'");
    assert_eq!(got[0][1], serde_json::json!(both.len()));
    assert_eq!(got[0][2].as_f64().unwrap() as i64, both.iter().sum::<i64>());
    assert_eq!(
        got[0][3].as_f64().unwrap() as i64,
        *both.iter().max().unwrap()
    );
    // A tag condition the index cannot narrow (a regex), with a time range, per host.
    let got = values("SELECT max(f) FROM m WHERE host =~ /^h1[0-9]$/ AND time >= 100s AND time < 200s GROUP BY host");
    let want: Vec<i64> = (10..20)
        .map(|h| {
            of(h)
                .filter(|(t, _)| (100..200).contains(t))
                .map(|(_, v)| v)
                .max()
                .unwrap()
        })
        .collect();
    assert_eq!(
        got.iter()
            .map(|r| r[1].as_f64().unwrap() as i64)
            .collect::<Vec<_>>(),
        want
    );
    // A condition on the field is judged row by row; one on tags only, once per series.
    let got = values("SELECT f FROM m WHERE f > 100000 AND pool = 'p1' AND host = 'h7'");
    let want: Vec<i64> = of(7).map(|(_, v)| v).filter(|&v| v > 100_000).collect();
    assert_eq!(
        got.iter()
            .map(|r| r[1].as_f64().unwrap() as i64)
            .collect::<Vec<_>>(),
        want
    );
    assert!(values("SELECT f FROM m WHERE pool = 'p1' AND host = 'h6'").is_empty());
    // Every series of the measurement, on both cores: the count of every point.
    let got = values("SELECT count(f) FROM m");
    assert_eq!(got[0][1], serde_json::json!(model.len()));

    // last() and first() read only the parts at their end of each series: the answer
    // must be the model's whatever part (file or head) holds it, overwrites included.
    let selected = |q: &str| -> (i64, i64) {
        let got = values(q);
        assert_eq!(got.len(), 1, "{q}: {got:?}");
        let t = got[0][0].as_str().unwrap();
        let secs = t
            .trim_start_matches("1970-01-01T")
            .trim_end_matches('Z')
            .split(':')
            .fold(0i64, |acc, part| acc * 60 + part.parse::<i64>().unwrap());
        (secs, got[0][1].as_f64().unwrap() as i64)
    };
    let newest_of =
        |h: u32, range: std::ops::Range<i64>| of(h).rfind(|(t, _)| range.contains(t)).unwrap();
    let oldest_of =
        |h: u32, range: std::ops::Range<i64>| of(h).find(|(t, _)| range.contains(t)).unwrap();
    // Time 1 s of host 2 was overwritten after its first value was flushed.
    assert_eq!(
        selected("SELECT first(f) FROM m WHERE host = 'h2'"),
        oldest_of(2, 0..400)
    );
    assert_eq!(
        selected("SELECT last(f) FROM m WHERE host = 'h2' AND time >= 20s AND time < 140s"),
        newest_of(2, 20..140)
    );
    assert_eq!(
        selected("SELECT last(f) FROM m WHERE host = 'h90'"),
        newest_of(90, 0..400)
    );
    // The newest point, overwritten now, then taken away by a delete: the one before
    // it is the last.
    let r = request(
        daemon.addr,
        "POST",
        "/write?db=c",
        &[],
        format!("m,host=h90,pool=p0 f=-7 {}\n", 399 * second).as_bytes(),
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        selected("SELECT last(f) FROM m WHERE host = 'h90'"),
        (399, -7)
    );
    let r = query(
        daemon.addr,
        "c",
        "DELETE FROM m WHERE host = 'h90' AND time >= 390s",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        selected("SELECT last(f) FROM m WHERE host = 'h90'"),
        newest_of(90, 0..390)
    );
    assert_eq!(
        selected("SELECT first(f) FROM m WHERE host = 'h90' AND time >= 385s"),
        newest_of(90, 385..386)
    );
    daemon.stop();
}
