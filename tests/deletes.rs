//! Deletes are durable: their tombstones outlive the log segments that held them (carried
//! by column files through flushes and merges), restarts and kill -9, and points written
//! after a delete survive it.

mod common;
use common::{files_with_extension as files, first_result, query, request, wait_until, Daemon};
use std::path::Path;

const CONFIG: &str = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";

fn write(daemon: &Daemon, body: &str) {
    let r = request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes());
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

fn ok(daemon: &Daemon, q: &str) {
    let r = query(daemon.addr, "c", q).json();
    assert!(r["results"][0]["error"].is_null(), "{q}: {r}");
}

/// The count a `SELECT count(..)` answers: a query that fails is a failure, not a 0; one
/// over no points answers no series, which is a count of 0.
fn count(daemon: &Daemon, q: &str) -> i64 {
    let result = first_result(&query(daemon.addr, "c", q));
    if result["series"].is_null() {
        return 0;
    }
    result["series"][0]["values"][0][1]
        .as_i64()
        .unwrap_or_else(|| panic!("{q}: not a count: {result}"))
}

/// Batches of 200 series at one time each, from `from` to `to` seconds. Each string value
/// ends in 32 pseudo-random hex digits: the data log compresses its records, and this
/// keeps them large enough to fill (and so seal and remove) several segments.
fn load(daemon: &Daemon, from: u64, to: u64) {
    let noise = |x: u64| {
        // splitmix64
        let z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for t in from..=to {
        let body: String = (0..200)
            .map(|h| {
                let n = t * 1000 + h;
                format!(
                    "m,host=h{h} f={t}.5,s=\"v{t}-{h}-{:016x}{:016x}\" {}\n",
                    noise(n),
                    noise(!n),
                    t * 1_000_000_000
                )
            })
            .collect();
        write(daemon, &body);
    }
}

#[test]
fn deletes_survive_flushes_merges_and_restarts() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let daemon = Daemon::start_with_config(&data, CONFIG);
    ok(&daemon, "CREATE DATABASE c");
    // In a column file before it is dropped: its old type must not come back at start-up.
    write(&daemon, "other,host=a f=1.5 1000000000");
    load(&daemon, 1, 300);
    let shard = common::shard_dirs(&data).remove(0);
    assert!(
        !files(&shard, "col").is_empty(),
        "points were flushed before the deletes"
    );

    ok(&daemon, "DELETE FROM m WHERE host = 'h7' AND time <= 100s");
    ok(&daemon, "DROP SERIES FROM m WHERE host = 'h8'");
    ok(&daemon, "DELETE WHERE time > 290s AND time <= 300s");
    ok(&daemon, "DROP MEASUREMENT other");
    let segments_with_deletes = files(&shard.join("log"), "seg");
    // Written after the deletes: kept, and of a new type for the dropped measurement.
    write(
        &daemon,
        "m,host=h8 f=-1 5000000000\nm,host=h7 f=-2 50000000000",
    );
    write(&daemon, "other,host=a f=\"now a string\" 2000000000");

    // Enough more to flush many times, merge, and remove the segments that held the
    // tombstones.
    load(&daemon, 1001, 1600);
    // Merges run on their own thread: one may still be under way.
    wait_until("column files merged into fewer than 8", || {
        files(&shard, "col").len() < 8
    });
    let left = files(&shard.join("log"), "seg");
    assert!(
        segments_with_deletes.is_disjoint(&left),
        "the log segments holding the tombstones are gone ({segments_with_deletes:?} / {left:?})"
    );

    let check = |daemon: &Daemon| {
        // h7: 300 points, 100 deleted before 100s, 10 after 290s, one rewritten; 600 later.
        assert_eq!(
            count(daemon, "SELECT count(f) FROM m WHERE host = 'h7'"),
            190 + 1 + 600
        );
        assert_eq!(
            count(daemon, "SELECT count(s) FROM m WHERE host = 'h7'"),
            190 + 600,
            "every field of a deleted point is gone"
        );
        assert_eq!(
            count(daemon, "SELECT count(f) FROM m WHERE host = 'h8'"),
            1 + 600
        );
        assert_eq!(
            count(
                daemon,
                "SELECT count(f) FROM m WHERE time > 290s AND time <= 300s"
            ),
            0
        );
        assert_eq!(
            count(daemon, "SELECT count(f) FROM m WHERE time <= 300s"),
            200 * 290 - 100 - 290 + 2
        );
        let other = query(daemon.addr, "c", "SELECT * FROM other").json();
        assert_eq!(
            other["results"][0]["series"][0]["values"],
            serde_json::json!([["1970-01-01T00:00:02Z", "now a string", "a"]])
        );
    };
    check(&daemon);
    assert!(daemon.stop().success());
    let daemon = Daemon::start_with_config(&data, CONFIG);
    check(&daemon);
    daemon.kill9();
    let daemon = Daemon::start_with_config(&data, CONFIG);
    check(&daemon);
    // The dropped measurement's new field type holds after restarts.
    write(&daemon, "other,host=a f=\"again\" 3000000000");
    daemon.stop();
}

#[test]
fn a_delete_replayed_from_the_log_after_kill_9_still_holds() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(root.path());
    ok(&daemon, "CREATE DATABASE c");
    write(
        &daemon,
        "m,host=a v=1 1000000000\nm,host=a v=2 2000000000\nm,host=b v=3 1000000000",
    );
    ok(&daemon, "DELETE FROM m WHERE host = 'a' AND time < 2s");
    write(&daemon, "m,host=a v=4 1000000000");
    ok(&daemon, "DROP SERIES FROM m WHERE host = 'b'");
    daemon.kill9();
    let daemon = Daemon::start(root.path());
    let r = query(daemon.addr, "c", "SELECT * FROM m").json();
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        serde_json::json!([
            ["1970-01-01T00:00:01Z", "a", 4],
            ["1970-01-01T00:00:02Z", "a", 2]
        ])
    );
    let series = query(daemon.addr, "c", "SHOW SERIES").json();
    assert_eq!(
        series["results"][0]["series"][0]["values"],
        serde_json::json!([["m,host=a"]])
    );
    daemon.stop();
}

/// Waits until the shards have `n` column files: idle heads are flushed in the background.
fn wait_for_column_files(data: &Path, n: usize) {
    wait_until(&format!("a flush to {n} column files"), || {
        let shards = std::fs::read_dir(data.join("shards")).unwrap();
        shards
            .map(|s| files(&s.unwrap().path(), "col").len())
            .sum::<usize>()
            >= n
    });
}

#[test]
fn a_dropped_measurement_stays_dropped_when_its_tombstone_is_only_in_a_column_file() {
    let config = "idle_flush_seconds = 1\n";
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_config(root.path(), config);
    ok(&daemon, "CREATE DATABASE c");
    write(
        &daemon,
        "other,host=a f=1.5 1000000000\nm,host=a v=1 1000000000",
    );
    wait_for_column_files(root.path(), 1);
    ok(&daemon, "DROP MEASUREMENT other");
    // Another flush: its file carries the tombstone, and the log that held it goes.
    write(&daemon, "m,host=a v=2 2000000000");
    wait_for_column_files(root.path(), 2);
    daemon.kill9();
    let daemon = Daemon::start_with_config(root.path(), config);
    let r = first_result(&query(daemon.addr, "c", "SELECT * FROM other"));
    assert!(r["series"].is_null(), "{r}");
    let names = query(daemon.addr, "c", "SHOW MEASUREMENTS").json();
    assert_eq!(
        names["results"][0]["series"][0]["values"],
        serde_json::json!([["m"]])
    );
    // Its old field type went with it.
    write(&daemon, "other,host=a f=\"text\" 3000000000");
    daemon.stop();
}
