//! A node's cost follows its data, not its shard count: thousands of hourly shards take a
//! bounded number of threads and open files, and their points read back after a restart
//! (clean or kill -9); a shard dropped and created again does not get its earlier self's
//! points back from the node's data log; a data directory of the earlier layout (a log in
//! each shard's directory) is migrated as its shards open.

mod common;
use common::{first_result, query, request, rows_of, Daemon};
use std::path::Path;

const HOUR: i64 = 3_600_000_000_000;
/// 2023-11-14T22:00:00Z, on an hour.
const START: i64 = 1_699_999_200_000_000_000;

fn write(d: &Daemon, body: &str) {
    let r = request(
        d.addr,
        "POST",
        "/write?db=d&rp=hourly",
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

/// Threads and open file descriptors of a process.
fn threads_and_files(pid: u32) -> (usize, usize) {
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{what}"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/{what}: {e}"))
            .count()
    };
    (count("task"), count("fd"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn count_all(d: &Daemon) -> serde_json::Value {
    rows_of(&query(d.addr, "d", "SELECT count(v) FROM hourly.m"))[0][1].clone()
}

/// The points of one hour, as read (times in nanoseconds).
fn hour(d: &Daemon, h: i64) -> Vec<serde_json::Value> {
    let q = format!(
        "SELECT v FROM hourly.m WHERE time >= {} AND time < {}",
        START + h * HOUR,
        START + (h + 1) * HOUR
    );
    let body = format!("q={}&db=d&epoch=ns", common::urlencode(&q));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    rows_of(&request(d.addr, "POST", "/query", &form, body.as_bytes()))
}

fn assert_bounded(d: &Daemon, when: &str) {
    let (threads, files) = threads_and_files(d.child.id());
    let bound = 2 * cores() + 16;
    assert!(
        threads <= bound,
        "{when}: {threads} threads, more than {bound}"
    );
    assert!(files <= 64, "{when}: {files} open files");
}

#[test]
fn thousands_of_hourly_shards_take_bounded_threads_and_files_and_read_back_after_restarts() {
    const HOURS: i64 = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let d = Daemon::start(&data);
    first_result(&query(
        d.addr,
        "",
        "CREATE DATABASE d WITH DURATION 0s REPLICATION 1 SHARD DURATION 1h NAME hourly",
    ));
    // Two series, one point each an hour, in batches of 1,000 lines.
    let lines: Vec<String> = (0..HOURS)
        .flat_map(|h| {
            let t = START + h * HOUR + 1;
            [format!("m,s=a v={h}i {t}"), format!("m,s=b v={}i {t}", -h)]
        })
        .collect();
    for batch in lines.chunks(1_000) {
        write(&d, &batch.join("\n"));
    }
    let shards = first_result(&query(d.addr, "", "SHOW SHARDS"));
    let listed: usize = shards["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(listed, HOURS as usize);
    assert_bounded(&d, "after the writes");
    assert_eq!(count_all(&d), serde_json::json!(2 * HOURS));
    assert_bounded(&d, "after a read of every shard");

    let check = |d: &Daemon, when: &str| {
        assert_bounded(d, when);
        for h in [0, 1, HOURS / 2, HOURS - 1] {
            let t = START + h * HOUR + 1;
            assert_eq!(
                hour(d, h),
                vec![serde_json::json!([t, h]), serde_json::json!([t, -h])],
                "{when}: hour {h}"
            );
        }
        assert_eq!(count_all(d), serde_json::json!(2 * HOURS), "{when}");
        assert_bounded(d, &format!("{when}, after a read of every shard"));
    };
    d.kill9();
    let d = Daemon::start(&data);
    check(&d, "after kill -9");
    assert!(d.stop().success());
    let d = Daemon::start(&data);
    check(&d, "after a clean stop");
    assert!(d.stop().success());
}

#[test]
fn a_shard_dropped_and_created_again_does_not_get_its_earlier_points_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let d = Daemon::start(&data);
    let create = "CREATE DATABASE d WITH DURATION 0s REPLICATION 1 SHARD DURATION 1h NAME hourly";
    first_result(&query(d.addr, "", create));
    write(&d, &format!("m,s=old v=1i {}", START + 1));
    first_result(&query(d.addr, "", "DROP DATABASE d"));
    first_result(&query(d.addr, "", create));
    write(&d, &format!("m,s=new v=2i {}", START + 2));
    let expected = vec![serde_json::json!([START + 2, 2])];
    assert_eq!(hour(&d, 0), expected);
    // Both records are in the data log, under the same shard id.
    d.kill9();
    let d = Daemon::start(&data);
    assert_eq!(hour(&d, 0), expected, "after kill -9");
    assert!(d.stop().success());
}

#[test]
fn a_data_directory_of_the_earlier_layout_is_migrated_as_its_shards_open() {
    use shardkeeper::line_protocol::parse_body;
    use shardkeeper::log::{Log, LogOptions, Record};
    use shardkeeper::storage::points_codec::encode_point_lines;
    use shardkeeper::storage::shard::POINT_LINES_RECORD;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let d = Daemon::start(&data);
    first_result(&query(d.addr, "", "CREATE DATABASE old"));
    // The shard's creation, in the catalog, with its directory.
    let r = request(d.addr, "POST", "/write?db=old", &[], b"m v=0i 1000");
    assert_eq!(r.status, 204);
    first_result(&query(d.addr, "old", "DELETE FROM m"));
    assert!(d.stop().success());

    // The earlier layout: no node-wide data log; the shard's points in a log of its own.
    std::fs::remove_dir_all(data.join("data-log")).unwrap();
    let shards: Vec<_> = std::fs::read_dir(data.join("shards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(shards.len(), 1);
    let shard: &Path = &shards[0];
    {
        let (log, _) = Log::open(shard.join("log"), LogOptions::default()).unwrap();
        let (points, errors) = parse_body(b"m,h=a v=1i 2000\nm,h=b v=2i 3000");
        assert!(errors.is_empty());
        log.append_blocking(vec![Record::new(
            POINT_LINES_RECORD,
            encode_point_lines(u64::MAX / 2, &points),
        )])
        .unwrap();
    }
    let expected = vec![
        serde_json::json!(["1970-01-01T00:00:00.000002Z", 1]),
        serde_json::json!(["1970-01-01T00:00:00.000003Z", 2]),
    ];
    let d = Daemon::start(&data);
    assert_eq!(rows_of(&query(d.addr, "old", "SELECT v FROM m")), expected);
    assert!(!shard.join("log").exists(), "the shard's own log was moved");
    assert!(!common::files_with_extension(shard, "col").is_empty());
    d.kill9();
    let d = Daemon::start(&data);
    assert_eq!(
        rows_of(&query(d.addr, "old", "SELECT v FROM m")),
        expected,
        "after a restart"
    );
    assert!(d.stop().success());
}
