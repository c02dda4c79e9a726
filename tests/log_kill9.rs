//! kill -9 on real files: a child appends from several threads and prints every
//! acknowledged LSN; it is killed after a random number of acknowledgements; every
//! acknowledged record must then be read back intact, and nothing else but what the child
//! tried to append, in the order each of its threads appended it.

mod common;
use common::{wait_until, BIN};
use shardkeeper::bench::log::load_payload;
use shardkeeper::log::{Log, LogOptions};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const KILLS: u32 = 24;
const WRITERS: u32 = 4;

/// The (writer, sequence number) a record of `append-load` was made from, if it was.
fn origin(payload: &[u8]) -> Option<(u32, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let unit = text.split_inclusive(';').next()?;
    let (writer, seq) = unit.strip_prefix('w')?.strip_suffix(';')?.split_once('s')?;
    let (writer, seq) = (writer.parse().ok()?, seq.parse().ok()?);
    (load_payload(writer, seq) == payload).then_some((writer, seq))
}

#[test]
fn acknowledged_records_survive_kill_9_and_nothing_is_invented() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    // LSN the next round's records start at.
    let mut round_start = 1;
    for round in 0..KILLS {
        let mut child = Command::new(BIN)
            .args(["debug", "append-load", "--writers", &WRITERS.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 50 + (seed % 1500) as usize;
        let count = Arc::new(AtomicUsize::new(0));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let counter = count.clone();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let f: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
                let [lsn, writer, seq] = f[..] else {
                    panic!("unexpected line {line:?}")
                };
                acked.push((lsn, writer as u32, seq));
                counter.fetch_add(1, Ordering::Relaxed);
            }
            acked
        });
        wait_until(&format!("{kill_after} acknowledged appends"), || {
            count.load(Ordering::Relaxed) >= kill_after
        });
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        let (log, _) = Log::open(dir.path(), LogOptions::default()).expect("reopen after kill -9");
        let mut stored = std::collections::HashMap::new();
        // Each writer restarts its sequence numbers in each round, and waits for an
        // append's acknowledgement before the next: its records of this round are
        // 0, 1, 2, ... in LSN order.
        let mut next_seq = vec![0u64; WRITERS as usize];
        let mut reader = log.reader(1).unwrap();
        while let Some(r) = reader.next().unwrap() {
            stored.insert(r.lsn, r.payload.to_vec());
            if r.lsn < round_start {
                continue;
            }
            let (writer, seq) = origin(r.payload).unwrap_or_else(|| {
                panic!(
                    "round {round}: LSN {} holds a record the child never appended: {:?}",
                    r.lsn,
                    String::from_utf8_lossy(&r.payload[..r.payload.len().min(40)])
                )
            });
            assert_eq!(
                seq, next_seq[writer as usize],
                "round {round}: LSN {} is writer {writer}'s append {seq} out of order",
                r.lsn
            );
            next_seq[writer as usize] += 1;
        }
        for (lsn, writer, seq) in &acked {
            assert_eq!(
                stored.get(lsn),
                Some(&load_payload(*writer, *seq)),
                "round {round}: acknowledged LSN {lsn} lost or changed"
            );
        }
        round_start = log.durable_lsn() + 1;
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
}
