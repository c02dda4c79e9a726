//! kill -9 on real files: a child appends from several threads and prints every
//! acknowledged LSN; it is killed at random moments; every acknowledged record must then be
//! read back intact.

mod common;
use common::BIN;
use shardkeeper::bench::log::load_payload;
use shardkeeper::log::{Log, LogOptions};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KILLS: u32 = 24;

#[test]
fn acknowledged_records_survive_kill_9_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut total_acked = 0usize;
    for round in 0..KILLS {
        let mut child = Command::new(BIN)
            .args(["debug", "append-load", "--writers", "4", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(30 + seed % 250);
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let f: Vec<u64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
                if let [lsn, writer, seq] = f[..] {
                    acked.push((lsn, writer as u32, seq));
                }
            }
            acked
        });
        let start = Instant::now();
        while start.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        total_acked += acked.len();

        let (log, _) = Log::open(dir.path(), LogOptions::default()).expect("reopen after kill -9");
        let mut stored = std::collections::HashMap::new();
        let mut reader = log.reader(1).unwrap();
        while let Some(r) = reader.next().unwrap() {
            stored.insert(r.lsn, r.payload.to_vec());
        }
        for (lsn, writer, seq) in &acked {
            let want = load_payload(*writer, *seq);
            assert_eq!(
                stored.get(lsn),
                Some(&want),
                "round {round}: acknowledged LSN {lsn} lost or changed"
            );
        }
        // The child restarts its sequence numbers each round; later rounds overwrite nothing.
        drop(log);
        let out = Command::new(BIN)
            .args(["ctl", "log", "verify"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.code() == Some(0),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(
        total_acked > 1000,
        "the test exercised real load ({total_acked} acknowledged)"
    );
}
