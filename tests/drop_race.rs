//! Writes racing DROP DATABASE: a write either lands before the drop (and goes with the
//! database) or is refused; none may open a dropped shard again, leaving a directory
//! that a database re-created under the same name (same shard ids) would inherit.

mod common;
use common::{query, request, Daemon};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn no_write_racing_drop_database_leaves_a_shard_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let d = Daemon::start(&data);
    let shards_dir = data.join("shards");
    for round in 0..30 {
        let r = query(d.addr, "", "CREATE DATABASE race");
        assert_eq!(r.status, 200);
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (addr, stop, acknowledged) = (d.addr, stop.clone(), acknowledged.clone());
                std::thread::spawn(move || {
                    // Points in four shard groups, so that each write opens shards.
                    for i in 0..2_000u64 {
                        let week = 7 * 86_400 * 1_000_000_000u64;
                        let t = 1_700_006_400_000_000_000 + (i % 4) * week + w;
                        let body = format!("m,w={w} v={i}i {t}");
                        let r = request(addr, "POST", "/write?db=race", &[], body.as_bytes());
                        match r.status {
                            204 => acknowledged.store(true, Ordering::Release),
                            404 if stop.load(Ordering::Acquire) => return,
                            s => {
                                panic!("write answered {s}: {:?}", String::from_utf8_lossy(&r.body))
                            }
                        }
                    }
                })
            })
            .collect();
        // Bounded: the writers stop on their own after 2,000 writes each.
        while !acknowledged.load(Ordering::Acquire) && !writers.iter().all(|w| w.is_finished()) {
            std::thread::yield_now();
        }
        assert!(
            acknowledged.load(Ordering::Acquire),
            "no write was acknowledged"
        );
        stop.store(true, Ordering::Release);
        let r = query(d.addr, "", "DROP DATABASE race");
        assert_eq!(r.status, 200);
        for w in writers {
            w.join().expect("writer");
        }
        // Directories of dropped shards are renamed aside (".dropped-...") before they
        // are removed in the background: no shard of a new database can meet those.
        let left: Vec<_> = std::fs::read_dir(&shards_dir)
            .expect("shards directory")
            .map(|e| e.expect("entry").file_name())
            .filter(|name| !name.to_string_lossy().starts_with(".dropped-"))
            .collect();
        assert!(
            left.is_empty(),
            "round {round}: shard directories left after the drop: {left:?}"
        );
    }
}
