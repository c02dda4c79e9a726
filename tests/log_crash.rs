//! Crash safety of the log on the simulated file system: after any crash, the log holds
//! exactly a prefix of what was appended that contains every acknowledged record, byte for
//! byte, with no gap and nothing invented.

use proptest::prelude::*;
use shardkeeper::log::sim::{CrashMode, SimFs};
use shardkeeper::log::{Log, LogOptions, Record};
use std::collections::BTreeMap;
use std::sync::Arc;

const DIR: &str = "/data/log";

fn options() -> LogOptions {
    // Small segments so that workloads roll often and crashes land mid-roll too.
    LogOptions {
        segment_capacity: 512,
        ..LogOptions::default()
    }
}

/// What the test knows about the log: acknowledged records by LSN, and payloads that were
/// sent but not acknowledged (they may or may not survive a crash).
#[derive(Default)]
struct Model {
    acked: BTreeMap<u64, Vec<u8>>,
    unacked: Vec<Vec<u8>>,
    next_id: u64,
}

impl Model {
    fn payload(&mut self, len: usize) -> Vec<u8> {
        self.next_id += 1;
        let mut p = format!("#{}#", self.next_id).into_bytes();
        p.resize(len.max(p.len()), b'a' + (self.next_id % 26) as u8);
        p
    }

    fn append(&mut self, log: &Log, len: usize) {
        let p = self.payload(len);
        match log.append_blocking(vec![Record::new(1, p.clone())]) {
            Ok(lsn) => {
                self.acked.insert(lsn, p);
            }
            Err(_) => self.unacked.push(p),
        }
    }

    /// Checks the reopened log against the model, then makes the model match it.
    fn check_after_recovery(&mut self, log: &Log) {
        let mut reader = log.reader(1).expect("reader from the start");
        let mut stored = Vec::new();
        while let Some(r) = reader.next().expect("recovered log reads cleanly") {
            assert_eq!(r.lsn, stored.len() as u64 + 1, "no gap");
            stored.push(r.payload.to_vec());
        }
        for (lsn, p) in &self.acked {
            let got = stored.get((*lsn - 1) as usize);
            assert_eq!(got, Some(p), "acknowledged record {lsn} lost or changed");
        }
        for (i, p) in stored.iter().enumerate() {
            let lsn = i as u64 + 1;
            let known = self.acked.get(&lsn) == Some(p) || self.unacked.contains(p);
            assert!(
                known,
                "record {lsn} was never appended: {:?}",
                String::from_utf8_lossy(p)
            );
        }
        self.acked = stored
            .into_iter()
            .enumerate()
            .map(|(i, p)| (i as u64 + 1, p))
            .collect();
        self.unacked.clear();
    }
}

fn open(fs: &SimFs) -> Log {
    Log::open_on(Arc::new(fs.clone()), DIR, options())
        .expect("a crashed log always reopens")
        .0
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    /// The process dies after this many more writes/syncs; later appends fail.
    DieAfterOps(u64),
    Crash(CrashMode),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Some larger than a segment (512 bytes), which get a segment of their own.
        8 => prop_oneof![6 => 1usize..200, 1 => 400usize..1500].prop_map(Op::Append),
        1 => (0u64..6).prop_map(Op::DieAfterOps),
        2 => prop_oneof![
            Just(CrashMode::DropUnsynced),
            any::<u64>().prop_map(|seed| CrashMode::Tear { seed }),
            Just(CrashMode::KeepUnsynced),
        ]
        .prop_map(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_records_survive_any_sequence_of_crashes(ops in proptest::collection::vec(op(), 1..80)) {
        let fs = SimFs::new();
        let mut model = Model::default();
        let mut log = Some(open(&fs));
        for op in ops {
            match op {
                Op::Append(len) => model.append(log.as_ref().expect("open"), len),
                Op::DieAfterOps(n) => fs.stop_after_ops(n),
                Op::Crash(mode) => {
                    drop(log.take());
                    fs.crash(mode);
                    let reopened = open(&fs);
                    model.check_after_recovery(&reopened);
                    log = Some(reopened);
                }
                Op::Reopen => {
                    drop(log.take());
                    fs.crash(CrashMode::DropUnsynced); // a clean stop loses nothing either
                    let reopened = open(&fs);
                    model.check_after_recovery(&reopened);
                    log = Some(reopened);
                }
            }
        }
        drop(log.take());
        fs.crash(CrashMode::Tear { seed: 7 });
        model.check_after_recovery(&open(&fs));
    }
}

/// The fixed workload of the exhaustive test: open, then appends that roll several
/// segments; the first and some later ones are larger than a segment (the empty first
/// segment grows for one, a segment is sized for the others).
fn workload(fs: &SimFs, model: &mut Model) {
    let Ok((log, _)) = Log::open_on(Arc::new(fs.clone()), DIR, options()) else {
        return;
    };
    for i in 0..40 {
        let len = match i {
            0 => 900,
            i if i % 9 == 4 => 600 + i * 13,
            i => 20 + (i * 37) % 150,
        };
        model.append(&log, len);
    }
}

#[test]
fn a_crash_at_every_write_and_sync_boundary_loses_no_acknowledged_record() {
    let probe = SimFs::new();
    workload(&probe, &mut Model::default());
    let total_ops = probe.ops();
    assert!(
        total_ops > 80,
        "the workload crosses many boundaries ({total_ops})"
    );
    for stop_at in 0..=total_ops {
        for mode in [
            CrashMode::DropUnsynced,
            CrashMode::Tear {
                seed: stop_at * 31 + 1,
            },
            CrashMode::KeepUnsynced,
        ] {
            let fs = SimFs::new();
            fs.stop_after_ops(stop_at);
            let mut model = Model::default();
            workload(&fs, &mut model);
            fs.crash(mode);
            let log = open(&fs);
            model.check_after_recovery(&log);
            // The recovered log takes appends again and keeps them.
            model.append(&log, 10);
            drop(log);
            fs.crash(CrashMode::DropUnsynced);
            model.check_after_recovery(&open(&fs));
        }
    }
    println!(
        "single appender: {} crash points exercised ({} operation boundaries x 3 modes of loss)",
        (total_ops + 1) * 3,
        total_ops + 1
    );
}

/// Group commit under crashes: appenders, each waiting for its append before the next.
const APPENDERS: u64 = 8;
const APPENDS_EACH: u64 = 12;

fn group_options() -> LogOptions {
    // Little may be unsynced (appends wait for the fdatasync in flight, larger ones are
    // written in pieces) and segments roll often, so every path of the writer crashes.
    LogOptions {
        segment_capacity: 4096,
        max_commit_bytes: 1024,
        ..LogOptions::default()
    }
}

/// Appender `a`'s `n`-th payload: mostly small, some larger than a commit may be, some
/// larger than a segment.
fn group_payload(a: u64, n: u64) -> Vec<u8> {
    let len = match (a * 7 + n * 3) % 17 {
        0 => 5000,
        1 | 2 => 1500,
        k => 20 + k as usize * 23,
    };
    let mut p = format!("<{a}:{n}>").into_bytes();
    p.resize(len, b'a' + (a * 5 + n) as u8 % 26);
    p
}

type Outcome = Vec<(Vec<(u64, u64)>, Option<u64>)>;

/// Runs the appenders; returns what each had acknowledged (LSN, append number) and the
/// append it was refused on, if any (None if the log did not open). An appender stops at
/// its first refusal, as a client would.
fn group_workload(fs: &SimFs) -> Option<Outcome> {
    let (log, _) = Log::open_on(Arc::new(fs.clone()), DIR, group_options()).ok()?;
    let log = Arc::new(log);
    let threads: Vec<_> = (0..APPENDERS)
        .map(|a| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for n in 0..APPENDS_EACH {
                    match log.append_blocking(vec![Record::new(1, group_payload(a, n))]) {
                        Ok(lsn) => acked.push((lsn, n)),
                        Err(_) => return (acked, Some(n)),
                    }
                }
                (acked, None)
            })
        })
        .collect();
    Some(threads.into_iter().map(|t| t.join().unwrap()).collect())
}

/// After recovery: every acknowledged record at its LSN, each appender's records in the
/// order it appended them, and nothing else but the one append each was refused on.
fn check_group(fs: &SimFs, outcome: &Outcome, what: &str) {
    let (log, _) = Log::open_on(Arc::new(fs.clone()), DIR, group_options())
        .unwrap_or_else(|e| panic!("{what}: a crashed log always reopens: {e}"));
    let mut reader = log.reader(1).unwrap();
    let mut stored = Vec::new();
    while let Some(r) = reader.next().unwrap() {
        assert_eq!(r.lsn, stored.len() as u64 + 1, "{what}: no gap");
        stored.push(r.payload.to_vec());
    }
    let mut next_of = vec![0u64; APPENDERS as usize];
    for (i, p) in stored.iter().enumerate() {
        let text = String::from_utf8_lossy(&p[..p.len().min(16)]).into_owned();
        let (a, n) = text
            .strip_prefix('<')
            .and_then(|t| t.split_once('>'))
            .and_then(|(id, _)| id.split_once(':'))
            .and_then(|(a, n)| Some((a.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
            .unwrap_or_else(|| panic!("{what}: record {} was never appended: {text:?}", i + 1));
        assert_eq!(
            *p,
            group_payload(a, n),
            "{what}: record {} is not what was appended",
            i + 1
        );
        assert_eq!(
            n,
            next_of[a as usize],
            "{what}: appender {a}'s records out of order or duplicated at LSN {}",
            i + 1
        );
        let (acked, refused) = &outcome[a as usize];
        assert!(
            (n as usize) < acked.len() || *refused == Some(n),
            "{what}: record {} ({a}:{n}) was never appended",
            i + 1
        );
        next_of[a as usize] += 1;
    }
    for (a, (acked, _)) in outcome.iter().enumerate() {
        for &(lsn, n) in acked {
            assert_eq!(
                stored.get(lsn as usize - 1),
                Some(&group_payload(a as u64, n)),
                "{what}: acknowledged record {lsn} ({a}:{n}) lost or changed"
            );
        }
    }
}

#[test]
fn group_commit_loses_no_acknowledged_record_at_any_crash_point() {
    let modes = |stop_at: u64| {
        [
            CrashMode::DropUnsynced,
            CrashMode::Tear {
                seed: stop_at * 131 + 7,
            },
            CrashMode::KeepUnsynced,
        ]
    };
    let (mut crash_points, mut writes_during_sync) = (0u64, 0u64);
    let mut stop_at = 0;
    // Concurrency makes each run's operations differ a little, so crash points go on until
    // a run finishes before its stop in every mode.
    loop {
        let mut interrupted = false;
        for mode in modes(stop_at) {
            let fs = SimFs::new();
            fs.stop_after_ops(stop_at);
            let outcome = group_workload(&fs);
            let hit = outcome
                .as_ref()
                .is_none_or(|o| o.iter().any(|(_, refused)| refused.is_some()));
            let outcome = outcome.unwrap_or_else(|| vec![(Vec::new(), None); APPENDERS as usize]);
            writes_during_sync += fs.writes_during_sync();
            fs.crash(mode);
            let what = format!("crash after {stop_at} operations ({mode:?})");
            check_group(&fs, &outcome, &what);
            if hit {
                interrupted = true;
                crash_points += 1;
            }
        }
        if !interrupted {
            break;
        }
        stop_at += 1;
    }
    println!(
        "group commit: {crash_points} crash points exercised ({stop_at} operation boundaries x 3 modes of loss), {writes_during_sync} writes landed during an fdatasync"
    );
    assert!(
        stop_at > 100,
        "the workload crosses many boundaries ({stop_at})"
    );
    assert!(
        writes_during_sync > 0,
        "appends were written while an fdatasync ran"
    );
}
