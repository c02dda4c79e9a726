//! Crash safety end to end: HTTP writes from several connections, SIGKILL after a random
//! number of acknowledged writes, restart; every acknowledged point is there with its exact
//! value.

mod common;
use common::{query, request, rows_of, wait_until, Daemon};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const KILLS: u64 = 10;
const CONNECTIONS: u64 = 4;

#[test]
fn acknowledged_points_survive_sigkill_during_http_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<(u64, u64), f64> = BTreeMap::new(); // (writer, time) -> value
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ u64::from(std::process::id());
    for round in 0..KILLS {
        let daemon = Daemon::start(dir.path());
        assert_eq!(query(daemon.addr, "", "CREATE DATABASE crash").status, 200);
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = (0..CONNECTIONS)
            .map(|w| {
                let (addr, stop, got) = (daemon.addr, stop.clone(), got.clone());
                std::thread::spawn(move || {
                    for batch in 0u64.. {
                        if stop.load(Ordering::Relaxed) || batch > 10_000 {
                            break;
                        }
                        // Each round writes new times; a value encodes round, writer and time.
                        let base = (round * 100_000 + batch * 10) * 1_000_000_000;
                        let lines: Vec<(u64, f64)> = (0..10)
                            .map(|i| {
                                (
                                    base + i * 1_000_000_000,
                                    (round * 1_000_000 + batch * 10 + i) as f64 + w as f64 / 10.0,
                                )
                            })
                            .collect();
                        let body: String = lines
                            .iter()
                            .map(|(t, v)| format!("crash,writer=w{w} value={v} {t}\n"))
                            .collect();
                        let r = std::panic::catch_unwind(|| {
                            request(addr, "POST", "/write?db=crash", &[], body.as_bytes())
                        });
                        match r {
                            Ok(r) if r.status == 204 => got
                                .lock()
                                .unwrap()
                                .extend(lines.into_iter().map(|(t, v)| ((w, t), v))),
                            _ => break, // the daemon died mid-request: not acknowledged
                        }
                    }
                })
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Killed after a random number of acknowledged batches (of 10 points), not after
        // a time: the load is the same however fast the machine is.
        let kill_after = 10 * (20 + seed % 200) as usize;
        wait_until(&format!("{kill_after} acknowledged points"), || {
            got.lock().unwrap().len() >= kill_after
        });
        daemon.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let _ = w.join();
        }
        acked.extend(got.lock().unwrap().drain(..));
    }

    let daemon = Daemon::start(dir.path());
    for w in 0..CONNECTIONS {
        let rows = rows_of(&query(
            daemon.addr,
            "crash",
            &format!("SELECT value FROM crash WHERE writer = 'w{w}'"),
        ));
        let stored: BTreeMap<u64, f64> = rows
            .iter()
            .map(|row| {
                let t = row[0]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .unwrap()
                    .as_nanosecond() as u64;
                (t, row[1].as_f64().unwrap())
            })
            .collect();
        for ((writer, t), v) in acked.range((w, 0)..(w + 1, 0)) {
            assert_eq!(
                stored.get(t),
                Some(v),
                "writer {writer}: acknowledged point at {t} lost or changed"
            );
        }
    }
    daemon.stop();
}
