//! `shardkeeper ctl log verify|dump` on real log directories.

mod common;
use common::BIN;
use shardkeeper::log::{Log, LogOptions, Record};
use std::process::Command;

fn write_log(dir: &std::path::Path, records: u64) {
    let (log, _) = Log::open(
        dir,
        LogOptions {
            segment_capacity: 1024,
            ..LogOptions::default()
        },
    )
    .unwrap();
    for i in 0..records {
        log.append_blocking(vec![Record::new(7, format!("record number {i}"))])
            .unwrap();
    }
}

fn ctl(args: &[&str], dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["ctl", "log"])
        .args(args)
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_passes_a_sound_log_with_a_one_line_summary() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 200);
    let (code, out) = ctl(&["verify"], dir.path());
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1);
    assert!(
        out.contains("200 records") && out.contains("LSN 1..200"),
        "{out}"
    );
}

#[test]
fn verify_names_the_file_and_offset_of_a_flipped_byte_in_a_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 200);
    let first = dir.path().join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&first, bytes).unwrap();
    let (code, out) = ctl(&["verify"], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("00000000000000000001.seg at byte"), "{out}");
    // The daemon's open refuses the same log.
    assert!(Log::open(dir.path(), LogOptions::default()).is_err());
}

#[test]
fn verify_names_a_damaged_last_record_as_corruption_and_open_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    let seg = dir.path().join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes[end - 3] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let (code, out) = ctl(&["verify"], dir.path());
    assert_eq!(code, 1, "{out}");
    let last = 32 + 4 * (9 + "record number 0".len());
    assert!(
        out.contains("corrupt")
            && out.contains(&format!("00000000000000000001.seg at byte {last}")),
        "{out}"
    );
    assert!(Log::open(dir.path(), LogOptions::default()).is_err());
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing changed");
}

#[test]
fn verify_reports_a_torn_tail_that_open_then_truncates() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    let seg = dir.path().join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    // A commit that a crash cut at a sector boundary: its first sector reached the disk.
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let mut frame = Vec::new();
    shardkeeper::log::format::encode_record(&mut frame, 7, &[b'x'; 1000]);
    frame.truncate(512 - end);
    bytes[end..512].copy_from_slice(&frame);
    std::fs::write(&seg, bytes).unwrap();
    let (code, out) = ctl(&["verify"], dir.path());
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("torn tail")
            && out.contains(&format!("at byte {end}"))
            && out.contains("LSN 5"),
        "{out}"
    );
    let (_, report) = Log::open(dir.path(), LogOptions::default()).unwrap();
    assert!(report.torn_tail.is_some());
    assert_eq!(ctl(&["verify"], dir.path()).0, 0);
}

#[test]
fn dump_prints_one_json_object_per_record_from_an_lsn() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 50);
    let out = Command::new(BIN)
        .args(["ctl", "log", "dump"])
        .arg(dir.path())
        .args(["--from", "41"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0]["lsn"], 41);
    assert_eq!(lines[9]["lsn"], 50);
    assert_eq!(lines[0]["kind"], 7);
}
