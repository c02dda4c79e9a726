//! A damaged shard does not take the node down: one byte flipped in a shard's column
//! file quarantines that shard (named with file and offset in /health, counted in
//! /metrics, reads and writes needing it refused with the reason), leaves its files
//! untouched, and every other shard serves. Dropping the shard is one way back. A byte
//! flipped in the node's data log, with acknowledged records after it, stops the node
//! from starting, with the file and offset: no record is dropped to let it start.

mod common;
use common::{query, request, wait_until, Daemon};
use std::path::{Path, PathBuf};

const WEEK: i64 = 7 * 86_400 * 1_000_000_000;
const START: i64 = 1_700_006_400_000_000_000;

fn write(d: &Daemon, body: &str) -> common::Response {
    request(d.addr, "POST", "/write?db=q", &[], body.as_bytes())
}

/// The ids of the database's shards, oldest group first.
fn shard_ids(d: &Daemon) -> Vec<u64> {
    let r = query(d.addr, "q", "SHOW SHARDS");
    assert_eq!(r.status, 200);
    let json = r.json();
    let series = json["results"][0]["series"].as_array().expect("series");
    let shards = series
        .iter()
        .find(|s| s["name"] == "q")
        .expect("shards of q");
    let mut rows: Vec<(String, u64)> = shards["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| {
            (
                v[4].as_str().expect("start_time").to_owned(),
                v[0].as_u64().expect("id"),
            )
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, id)| id).collect()
}

fn count(d: &Daemon, range: (i64, i64)) -> common::Response {
    query(
        d.addr,
        "q",
        &format!(
            "SELECT count(v) FROM m WHERE time >= {} AND time < {}",
            range.0, range.1
        ),
    )
}

/// Paths of the files in `dir` ending in `.{extension}`, sorted.
fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let names = common::files_with_extension(dir, extension);
    names.into_iter().map(|name| dir.join(name)).collect()
}

/// Two weeks of points, one shard each; returns the ids, oldest week first.
fn two_weeks(d: &Daemon) -> ((i64, i64), (i64, i64), Vec<u64>) {
    assert_eq!(query(d.addr, "", "CREATE DATABASE q").status, 200);
    let (first, second) = ((START, START + WEEK), (START + WEEK, START + 2 * WEEK));
    for batch in 0..20 {
        let mut body = String::new();
        for i in 0..50 {
            let n = batch * 50 + i;
            body.push_str(&format!("m,h=a v={n}i {}\n", first.0 + n));
            body.push_str(&format!("m,h=b v={n}i {}\n", second.0 + n));
        }
        assert_eq!(write(d, &body).status, 204);
    }
    let ids = shard_ids(d);
    assert_eq!(ids.len(), 2, "one shard a week");
    (first, second, ids)
}

/// What a node shows with shard `damaged` quarantined for damage in `file`: `/health` names
/// the shard, the file and the offset, `/metrics` counts it, the intact week answers whole
/// (`intact` points), and the damaged week's reads and writes are refused with the reason.
fn assert_quarantined(
    d: &Daemon,
    damaged: u64,
    file: &str,
    (damaged_week, intact_week): ((i64, i64), (i64, i64)),
) {
    let health = request(d.addr, "GET", "/health", &[], b"");
    assert_eq!(health.status, 200);
    let health = health.json();
    assert_eq!(health["status"], "warn", "{health}");
    let check = health["checks"][0]["message"].as_str().expect("a check");
    assert!(check.contains(file) && check.contains("at byte"), "{check}");
    assert_eq!(health["checks"][0]["name"], format!("shard {damaged}"));
    let metrics = request(d.addr, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics.contains("\nshardkeeper_shards_quarantined 1\n"),
        "{metrics}"
    );
    let r = count(d, intact_week);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["results"][0]["series"][0]["values"][0][1],
        1000,
        "{:?}",
        r.json()
    );
    let r = count(d, damaged_week);
    let error = r.json()["results"][0]["error"].as_str().map(str::to_owned);
    let error = error.unwrap_or_else(|| panic!("the damaged shard answered {:?}", r.json()));
    assert!(
        error.contains(&format!("shard {damaged} is quarantined")) && error.contains(file),
        "{error}"
    );
    let r = write(d, &format!("m,h=c v=1i {}", damaged_week.0 + 5_000));
    assert_eq!(r.status, 503, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        write(d, &format!("m,h=c v=1i {}", intact_week.0 + 5_000)).status,
        204
    );
}

#[test]
fn a_flipped_byte_in_a_column_file_quarantines_that_shard_and_the_rest_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let config = "idle_flush_seconds = 1\n";
    let d = Daemon::start_with_config(&data, config);
    let (damaged_week, intact_week, ids) = two_weeks(&d);
    let damaged = ids[0];
    let shard_dir = data.join("shards").join(damaged.to_string());
    // Idle, the heads are written out as column files.
    wait_until("the heads are written out", || {
        ids.iter()
            .all(|id| !files_with(&data.join("shards").join(id.to_string()), "col").is_empty())
    });
    assert!(d.stop().success());

    // A byte of the file's index (read whole when the shard opens).
    let file = files_with(&shard_dir, "col").pop().expect("a column file");
    let mut bytes = std::fs::read(&file).expect("column file");
    let at = bytes.len() - 40;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).expect("flip a byte");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();

    let d = Daemon::start_with_config(&data, config);
    assert_quarantined(&d, damaged, &name, (damaged_week, intact_week));
    // Nothing on disk changed.
    assert_eq!(std::fs::read(&file).expect("column file"), bytes);

    // Dropping the damaged shard clears the quarantine; its time range takes writes again.
    let r = query(d.addr, "q", &format!("DROP SHARD {damaged}"));
    assert_eq!(r.status, 200, "{:?}", r.json());
    let health = request(d.addr, "GET", "/health", &[], b"").json();
    assert_eq!(health["status"], "pass", "{health}");
    assert_eq!(
        write(&d, &format!("m,h=c v=1i {}", damaged_week.0 + 5_000)).status,
        204
    );
    let r = count(&d, damaged_week);
    assert_eq!(
        r.json()["results"][0]["series"][0]["values"][0][1],
        1,
        "{:?}",
        r.json()
    );
}

/// The data log's newest segment, its bytes, and the offsets of its records' payloads.
fn data_log_records(data: &Path) -> (PathBuf, Vec<u8>, Vec<usize>) {
    use shardkeeper::log::format::{decode_frame, Frame, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
    let segment = files_with(&data.join("data-log"), "seg")
        .pop()
        .expect("a segment");
    let bytes = std::fs::read(&segment).expect("segment");
    let (mut payloads, mut offset) = (Vec::new(), SEGMENT_HEADER_LEN);
    while let Frame::Record { next, .. } = decode_frame(&bytes, offset) {
        payloads.push(offset + RECORD_HEADER_LEN);
        offset = next;
    }
    (segment, bytes, payloads)
}

/// A record's shard, from its header (shard id, incarnation, sequence number).
fn shard_of_record(bytes: &[u8], payload: usize) -> u64 {
    u64::from_le_bytes(bytes[payload..payload + 8].try_into().unwrap())
}

#[test]
fn a_flipped_byte_in_the_data_log_quarantines_the_shard_of_that_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let d = Daemon::start(&data);
    let (first, second, ids) = two_weeks(&d);
    // No clean stop needed: the records stay in the data log either way.
    d.kill9();
    let (segment, mut bytes, payloads) = data_log_records(&data);
    assert_eq!(payloads.len(), 40, "a record per shard per write");
    // A byte of the points of a record in the middle, acknowledged records after it.
    let payload = payloads[payloads.len() / 2];
    let damaged = shard_of_record(&bytes, payload);
    let intact_week = if damaged == ids[0] { second } else { first };
    let damaged_week = if damaged == ids[0] { first } else { second };
    bytes[payload + 40] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("flip a byte");

    let d = Daemon::start(&data);
    let file = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert_quarantined(&d, damaged, &file, (damaged_week, intact_week));
    // Nothing on disk changed: the records after the damage are still there.
    let end = bytes.iter().rposition(|&b| b != 0).expect("records") + 1;
    let on_disk = std::fs::read(&segment).expect("segment");
    assert!(
        on_disk[..end] == bytes[..end],
        "the records up to the restart changed"
    );
    // Dropping the shard clears the quarantine.
    let r = query(d.addr, "q", &format!("DROP SHARD {damaged}"));
    assert_eq!(r.status, 200, "{:?}", r.json());
    let health = request(d.addr, "GET", "/health", &[], b"").json();
    assert_eq!(health["status"], "pass", "{health}");
    d.kill9();
    // The damaged record, still in the log, names a shard no longer known: passed over,
    // with a warning for as long as the log holds it.
    let d = Daemon::start(&data);
    let r = count(&d, intact_week);
    assert_eq!(
        r.json()["results"][0]["series"][0]["values"][0][1],
        1001,
        "after a restart: {:?}",
        r.json()
    );
    let health = request(d.addr, "GET", "/health", &[], b"").json();
    assert_eq!(health["checks"][0]["name"], "data log", "{health}");
    assert!(d.stop().success());
}

#[test]
fn a_damaged_data_log_record_that_names_no_shard_is_passed_over_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let d = Daemon::start(&data);
    two_weeks(&d);
    d.kill9();
    let (segment, mut bytes, payloads) = data_log_records(&data);
    // The shard id itself: the record may be any shard's.
    bytes[payloads[payloads.len() / 2] + 3] ^= 0x40;
    std::fs::write(&segment, &bytes).expect("flip a byte");

    let d = Daemon::start(&data);
    let health = request(d.addr, "GET", "/health", &[], b"").json();
    assert_eq!(health["status"], "warn", "{health}");
    assert_eq!(health["checks"][0]["name"], "data log", "{health}");
    let check = health["checks"][0]["message"].as_str().expect("a check");
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        check.contains(&name) && check.contains("at byte"),
        "{check}"
    );
    // Every other record was read: of the 2,000 points, the one record's 50 are missing.
    let r = query(d.addr, "q", "SELECT count(v) FROM m");
    assert_eq!(r.json()["results"][0]["series"][0]["values"][0][1], 1950);
    assert!(d.stop().success());
    assert!(
        std::fs::read(&segment).expect("segment") == bytes,
        "the segment changed"
    );
}

/// The way back the README gives: a quarantined shard restored in place from a backup
/// taken before the damage serves again (its damaged file left behind), and stays whole
/// after a restart.
#[test]
fn a_quarantined_shard_restored_in_place_from_a_backup_serves_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let d = Daemon::start(&data);
    let (damaged_week, intact_week, ids) = two_weeks(&d);
    let damaged = ids[0];
    let backup = request(
        d.addr,
        "GET",
        &format!("/api/v2/backup/shards/{damaged}"),
        &[],
        b"",
    );
    assert_eq!(backup.status, 200);
    assert!(d.stop().success());
    let shard_dir = data.join("shards").join(damaged.to_string());
    let file = files_with(&shard_dir, "col")
        .pop()
        .expect("the backup's column file");
    let mut bytes = std::fs::read(&file).expect("column file");
    let at = bytes.len() - 40;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).expect("flip a byte");

    let d = Daemon::start(&data);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert_quarantined(&d, damaged, &name, (damaged_week, intact_week));
    let r = request(
        d.addr,
        "POST",
        &format!("/api/v2/restore/shards/{damaged}"),
        &[],
        &backup.body,
    );
    assert!(
        (200..300).contains(&r.status),
        "{}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let health = request(d.addr, "GET", "/health", &[], b"").json();
    assert_eq!(health["status"], "pass", "{health}");
    let restored = |d: &Daemon| {
        count(d, damaged_week).json()["results"][0]["series"][0]["values"][0][1].clone()
    };
    assert_eq!(restored(&d), 1000, "the backup's points");
    d.kill9();
    let d = Daemon::start(&data);
    assert_eq!(restored(&d), 1000, "after a restart");
    assert!(d.stop().success());
}
