//! Fail points switched on through `SHARDKEEPER_FAILPOINTS`: each one's outcome as a client
//! sees it, and a restart (fail points off) that recovers everything acknowledged.

mod common;
use common::{files_with_extension, query, request, rows_of, try_request, Daemon};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn start(data: &Path, failpoints: &str) -> Daemon {
    start_with(data, None, failpoints)
}

fn start_with(data: &Path, config: Option<&str>, failpoints: &str) -> Daemon {
    Daemon::try_start_with_env(data, config, &[("SHARDKEEPER_FAILPOINTS", failpoints)])
        .unwrap_or_else(|stderr| panic!("daemon did not start: {stderr}"))
}

fn write(addr: SocketAddr, first: usize, n: usize) -> common::Response {
    let body: String = (first..first + n)
        .map(|i| format!("m,s=a v={i}i {}\n", 1_700_000_000_000_000_000i64 + i as i64))
        .collect();
    request(addr, "POST", "/write?db=d", &[], body.as_bytes())
}

/// The values of `m` as they read back, in time order.
fn values(addr: SocketAddr) -> Vec<i64> {
    let r = query(addr, "d", "SELECT v FROM m");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    rows_of(&r)
        .iter()
        .map(|row| row[1].as_i64().unwrap())
        .collect()
}

/// A data directory holding database `d` with `points` points, its node stopped.
fn created(points: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = Daemon::start(&data);
    assert_eq!(query(node.addr, "", "CREATE DATABASE d").status, 200);
    assert_eq!(write(node.addr, 0, points).status, 204);
    node.stop();
    (dir, data)
}

#[test]
fn a_failed_fdatasync_fails_the_write_and_a_restart_keeps_what_was_acknowledged() {
    let (_dir, data) = created(100);

    let node = start(&data, "log.fsync=return(EIO)");
    let r = write(node.addr, 100, 10);
    assert!(
        r.status >= 500,
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        String::from_utf8_lossy(&r.body).contains("fail point log.fsync"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // A log whose fdatasync failed takes no more writes, even once the disk is back.
    assert!(write(node.addr, 200, 1).status >= 500);
    node.kill9();

    let node = Daemon::start(&data);
    let back = values(node.addr);
    assert_eq!(back[..100], (0..100).collect::<Vec<i64>>()[..]);
    assert!(back.len() == 100 || back.len() == 110, "{back:?}");
}

#[test]
fn a_flush_that_fails_before_its_rename_keeps_the_points_readable_and_durable() {
    let (_dir, data) = created(0);
    let node = start(&data, "column_file.before_rename=return(EIO)");
    assert_eq!(write(node.addr, 0, 500).status, 204);
    let shards = query(node.addr, "", "SHOW SHARDS").json();
    let id = shards["results"][0]["series"][0]["values"][0][0]
        .as_u64()
        .unwrap();
    // A shard's backup writes its head out first: here that flush fails.
    let r = request(
        node.addr,
        "GET",
        &format!("/api/v2/backup/shards/{id}"),
        &[],
        b"",
    );
    assert!(r.status >= 500, "{}", r.status);
    assert_eq!(values(node.addr), (0..500).collect::<Vec<i64>>());
    node.kill9();
    let node = Daemon::start(&data);
    assert_eq!(values(node.addr), (0..500).collect::<Vec<i64>>());
}

#[test]
fn a_write_path_error_reaches_the_client_and_stores_nothing() {
    let (_dir, data) = created(3);
    let node = start(&data, "http.write=1*return(EIO)->off");
    let r = write(node.addr, 3, 5);
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("fail point http.write"));
    assert_eq!(values(node.addr), vec![0, 1, 2]);
    // `1*`: once only, then off.
    assert_eq!(write(node.addr, 3, 5).status, 204);
    assert_eq!(values(node.addr), (0..8).collect::<Vec<i64>>());
}

#[test]
fn an_abort_at_a_fail_point_is_a_crash_that_a_restart_recovers_from() {
    let (_dir, data) = created(20);
    let mut node = start(&data, "http.write=return(abort)");
    let r = std::panic::catch_unwind(|| write(node.addr, 20, 5));
    let status = common::wait_bounded(&mut node.child, std::time::Duration::from_secs(30));
    assert!(!status.success(), "{status:?}");
    assert!(r.map_or(true, |r| r.status >= 500));
    let node = Daemon::start(&data);
    assert_eq!(values(node.addr), (0..20).collect::<Vec<i64>>());
}

#[test]
fn the_fail_points_are_listed_and_a_misspelt_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = start(&data, "merge.after_write=sleep(10)");
    let r = request(node.addr, "GET", "/debug/failpoints", &[], b"");
    assert_eq!(r.status, 200);
    let listed = r.json();
    assert_eq!(listed["armed"], true);
    let points = listed["failpoints"].as_array().unwrap();
    assert!(points.len() >= 6, "{listed}");
    let merge = points
        .iter()
        .find(|p| p["name"] == "merge.after_write")
        .unwrap();
    assert_eq!(merge["actions"], "sleep(10)");
    let fsync = points.iter().find(|p| p["name"] == "log.fsync").unwrap();
    assert!(fsync["actions"].is_null(), "{fsync}");
    drop(node);

    let stderr = Daemon::try_start_with_env(
        &data,
        None,
        &[("SHARDKEEPER_FAILPOINTS", "log.fsnyc=return(EIO)")],
    )
    .err()
    .expect("a misspelt fail point must stop the start");
    assert!(stderr.contains("no fail point \"log.fsnyc\""), "{stderr}");
}

/// Enough points (200 series) for a 1 MiB head to be flushed more than 8 times: a merge.
const POINTS_PER_SERIES: u64 = 2000;

#[test]
fn a_merge_stopped_after_its_write_leaves_every_point_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "max_head_mib = 1\n";
    let env = [("SHARDKEEPER_FAILPOINTS", "merge.after_write=return(EIO)")];
    let node = Daemon::try_start_with_env(&data, Some(config), &env).unwrap();
    assert_eq!(query(node.addr, "", "CREATE DATABASE c").status, 200);
    for t in 0..POINTS_PER_SERIES {
        let body: String = (0..200)
            .map(|h| format!("m,host=h{h} f={t}.25 {}\n", (t + 1) * 1_000_000_000))
            .collect();
        let r = request(node.addr, "POST", "/write?db=c", &[], body.as_bytes());
        assert_eq!(r.status, 204);
    }
    let check = |addr| {
        let r = query(
            addr,
            "c",
            "SELECT count(f), sum(f) FROM m WHERE host = 'h7'",
        );
        let rows = rows_of(&r);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0][1], POINTS_PER_SERIES, "every point once: {rows:?}");
        let sum: f64 = (0..POINTS_PER_SERIES).map(|t| t as f64 + 0.25).sum();
        assert_eq!(rows[0][2].as_f64(), Some(sum), "{rows:?}");
    };
    // Every merge stopped after writing its file: the files it would replace stay.
    let shard = common::shard_dirs(&data).remove(0);
    let column_files = || common::files_with_extension(&shard, "col").len();
    assert!(column_files() >= 8, "{} column files", column_files());
    check(node.addr);
    node.kill9();
    let node = Daemon::start_with_config(&data, config);
    check(node.addr);
}

#[test]
fn a_restore_stopped_before_its_swap_leaves_the_live_shard_as_it_was() {
    let (_dir, data) = created(50);
    let node = start(&data, "restore.before_swap=return(EIO)");
    let shards = query(node.addr, "", "SHOW SHARDS").json();
    let id = shards["results"][0]["series"][0]["values"][0][0]
        .as_u64()
        .unwrap();
    let path = format!("/api/v2/backup/shards/{id}");
    let archive = request(node.addr, "GET", &path, &[], b"");
    assert_eq!(archive.status, 200);
    assert_eq!(write(node.addr, 50, 10).status, 204);
    let path = format!("/api/v2/restore/shards/{id}");
    let r = request(node.addr, "POST", &path, &[], &archive.body);
    assert!(
        r.status >= 500,
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(values(node.addr), (0..60).collect::<Vec<i64>>());
    assert_eq!(write(node.addr, 60, 1).status, 204);
    node.kill9();
    let node = Daemon::start(&data);
    assert_eq!(values(node.addr), (0..61).collect::<Vec<i64>>());
}

/// A snapshot of the control state after every control event.
const SNAPSHOT_EVERY_EVENT: &str = "[log]\nsnapshot_every_mib = 0\n";

fn create_policy(addr: SocketAddr, name: &str) -> Result<common::Response, String> {
    let q = format!("CREATE RETENTION POLICY {name} ON d DURATION 1d REPLICATION 1");
    try_request(
        addr,
        "POST",
        &format!("/query?q={}", common::urlencode(&q)),
        &[],
        b"",
    )
}

fn policies(addr: SocketAddr) -> Vec<String> {
    rows_of(&query(addr, "", "SHOW RETENTION POLICIES ON d"))
        .iter()
        .map(|row| row[0].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_crash_before_a_snapshot_is_renamed_keeps_the_control_state_and_its_tmp_goes() {
    let (_dir, data) = created(10);
    let control = data.join("control");
    let snapshots_before = files_with_extension(&control, "snap");
    let mut node = start_with(
        &data,
        Some(SNAPSHOT_EVERY_EVENT),
        "snapshot.before_rename=return(abort)",
    );
    // The event is durable before its snapshot is written: the answer never comes.
    let r = create_policy(node.addr, "p1");
    let status = common::wait_bounded(&mut node.child, Duration::from_secs(30));
    assert!(!status.success(), "{status:?}");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(files_with_extension(&control, "snap"), snapshots_before);
    assert_eq!(files_with_extension(&control, "tmp").len(), 1);

    let node = Daemon::start_with_config(&data, SNAPSHOT_EVERY_EVENT);
    assert!(files_with_extension(&control, "tmp").is_empty());
    assert!(policies(node.addr).contains(&"p1".to_owned()));
    assert_eq!(values(node.addr), (0..10).collect::<Vec<i64>>());
    // Snapshots go on, from the state the log's tail rebuilt.
    assert_eq!(create_policy(node.addr, "p2").unwrap().status, 200);
    assert_ne!(files_with_extension(&control, "snap"), snapshots_before);
    node.kill9();
    let node = Daemon::start(&data);
    let kept = policies(node.addr);
    assert!(
        ["p1", "p2"].iter().all(|p| kept.contains(&p.to_string())),
        "{kept:?}"
    );
    assert_eq!(values(node.addr), (0..10).collect::<Vec<i64>>());
}

#[test]
fn a_snapshot_that_fails_before_its_rename_fails_no_mutation_and_leaves_no_tmp() {
    let (_dir, data) = created(10);
    let control = data.join("control");
    let snapshots_before = files_with_extension(&control, "snap");
    let node = start_with(
        &data,
        Some(SNAPSHOT_EVERY_EVENT),
        "snapshot.before_rename=return(EIO)",
    );
    // A failed snapshot costs replay time at the next start, not the mutation.
    assert_eq!(create_policy(node.addr, "p1").unwrap().status, 200);
    assert_eq!(write(node.addr, 10, 5).status, 204);
    assert_eq!(files_with_extension(&control, "snap"), snapshots_before);
    assert!(files_with_extension(&control, "tmp").is_empty());
    node.kill9();
    let node = Daemon::start(&data);
    assert!(policies(node.addr).contains(&"p1".to_owned()));
    assert_eq!(values(node.addr), (0..15).collect::<Vec<i64>>());
}

/// Heads of 1 MiB and data-log segments of 1 MiB: a few batches make a flush, and each
/// flush lets the segments it covers go.
const SMALL_HEADS_AND_SEGMENTS: &str = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";
const LINES_PER_BATCH: usize = 2000;
/// Bound of the loops that write until the segments show what a test waits for.
const MOST_BATCHES: usize = 500;

/// Batch `b` into `d`: values `b * LINES_PER_BATCH..` in time order, each with 32 hex
/// digits that zstd cannot shrink much, so that segments fill.
fn write_noisy(addr: SocketAddr, b: usize) -> Result<common::Response, String> {
    let mut body = String::new();
    for i in b * LINES_PER_BATCH..(b + 1) * LINES_PER_BATCH {
        let noise = (i as u128 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        body.push_str(&format!(
            "m,s=a v={i}i,noise=\"{noise:032x}\" {}\n",
            1_700_000_000_000_000_000i64 + i as i64
        ));
    }
    try_request(addr, "POST", "/write?db=d", &[], body.as_bytes())
}

/// Checks that the first `acked` batches read back, each value once; the batch after them
/// (in flight at a crash) may be there too.
fn check_noisy(addr: SocketAddr, acked: usize) {
    let rows = rows_of(&query(addr, "d", "SELECT count(v), sum(v) FROM m"));
    let (count, sum) = (rows[0][1].as_u64().unwrap(), rows[0][2].as_u64().unwrap());
    let acked = (acked * LINES_PER_BATCH) as u64;
    assert!(
        count == acked || count == acked + LINES_PER_BATCH as u64,
        "{count} points, {acked} acknowledged"
    );
    let expected = count * count.saturating_sub(1) / 2;
    assert_eq!(sum, expected, "values 0..{count}, each once");
}

fn data_segments(data: &Path) -> std::collections::BTreeSet<String> {
    files_with_extension(&data.join("data-log"), "seg")
}

#[test]
fn a_crash_between_two_segment_removals_keeps_everything_acknowledged() {
    let (_dir, data) = created(0);
    let config = Some(SMALL_HEADS_AND_SEGMENTS);
    // The first removal goes through; the process dies before the second.
    let mut node = start_with(&data, config, "log.segment_remove=1*off->return(abort)");
    let mut acked = 0;
    while acked < MOST_BATCHES {
        match write_noisy(node.addr, acked) {
            Ok(r) if r.status == 204 => acked += 1,
            _ => break,
        }
    }
    let status = common::wait_bounded(&mut node.child, Duration::from_secs(30));
    assert!(!status.success(), "{status:?} after {acked} batches");
    let node = Daemon::start_with_config(&data, SMALL_HEADS_AND_SEGMENTS);
    check_noisy(node.addr, acked);
    node.kill9();
    let node = Daemon::start(&data);
    check_noisy(node.addr, acked);
}

#[test]
fn a_segment_that_cannot_be_removed_stays_listed_and_goes_after_a_restart() {
    let (_dir, data) = created(0);
    let config = Some(SMALL_HEADS_AND_SEGMENTS);
    let node = start_with(&data, config, "log.segment_remove=return(EIO)");
    let first = data_segments(&data).pop_first().unwrap();
    // Writes go on; the segments flushes have covered stay.
    let mut acked = 0;
    while data_segments(&data).len() < 6 && acked < MOST_BATCHES {
        assert_eq!(write_noisy(node.addr, acked).unwrap().status, 204);
        acked += 1;
    }
    assert!(data_segments(&data).len() >= 6, "{acked} batches");
    // The log still lists them (once the flush under way is done): its figures count
    // them, and a later removal retries.
    common::wait_until("the data log to list every segment file", || {
        let metrics = String::from_utf8(node.request("GET", "/metrics", b"").body).unwrap();
        let listed = metrics
            .lines()
            .find_map(|l| l.strip_prefix("shardkeeper_log_segments{log=\"data\"} "))
            .unwrap()
            .to_owned();
        listed == data_segments(&data).len().to_string()
    });
    check_noisy(node.addr, acked);
    node.kill9();

    let node = Daemon::start_with_config(&data, SMALL_HEADS_AND_SEGMENTS);
    check_noisy(node.addr, acked);
    let mut more = acked;
    while data_segments(&data).contains(&first) && more < acked + MOST_BATCHES {
        assert_eq!(write_noisy(node.addr, more).unwrap().status, 204);
        more += 1;
    }
    assert!(!data_segments(&data).contains(&first), "{more} batches");
    check_noisy(node.addr, more);
}
