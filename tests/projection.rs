//! State as a fold of the control log: mutations are durable before they are visible,
//! refused mutations change nothing, and start-up rebuilds the same state from a snapshot
//! plus the log's tail.

use shardkeeper::control::{backups, ControlLog};
use shardkeeper::log::LogOptions;
use shardkeeper::projection::{Projection, ProjectionError};
use shardkeeper::proto::{BackupStarted, RetentionPolicySpec};
use shardkeeper::CatalogError;

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

fn open(
    dir: &std::path::Path,
    snapshot_every_bytes: u64,
) -> (ControlLog, shardkeeper::projection::Rebuilt) {
    let options = LogOptions {
        segment_capacity: 4096,
        ..LogOptions::default()
    };
    ControlLog::open(dir, options, snapshot_every_bytes).unwrap()
}

async fn create(log: &ControlLog, name: &str) -> Result<(), TestError> {
    log.mutate(|c| Ok::<_, TestError>((c.catalog.create_database(name, None)?, ())))
        .await
}

#[tokio::test]
async fn the_catalog_is_rebuilt_from_snapshot_plus_tail_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (log, rebuilt) = open(dir.path(), 2048);
    assert_eq!((rebuilt.snapshot_lsn, rebuilt.replayed), (None, 0));
    for i in 0..400 {
        create(&log, &format!("db{i:03}")).await.unwrap();
    }
    let week = RetentionPolicySpec {
        name: "week".into(),
        duration_nanos: 7 * 86_400 * 1_000_000_000,
        shard_group_duration_nanos: 0,
        replication: 1,
    };
    log.mutate(|c| Ok::<_, TestError>((c.catalog.create_policy("db007", week.clone(), true)?, ())))
        .await
        .unwrap();
    let before = log.read(|c| c.clone()).await;
    drop(log);

    let (log, rebuilt) = open(dir.path(), 2048);
    assert!(
        rebuilt.snapshot_lsn.is_some(),
        "snapshots were taken every 2 KiB of events"
    );
    assert!(
        rebuilt.replayed < 101,
        "only the tail is replayed ({})",
        rebuilt.replayed
    );
    assert_eq!(log.read(|c| c.clone()).await, before);
    assert_eq!(
        log.read(|c| c.catalog.databases["db007"].default_policy.clone())
            .await,
        "week"
    );
    // Segments the snapshots kept cover were removed.
    assert!(log.log().figures().oldest_lsn > 1);
}

/// Each sub-state (here the catalog and the backup ledger) is rebuilt from the one snapshot
/// plus the tail: the ledger's events in between the catalog's.
#[tokio::test]
async fn every_sub_state_is_rebuilt_from_snapshot_plus_tail_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 2048);
    for i in 0..100 {
        create(&log, &format!("db{i:03}")).await.unwrap();
        let started = backups::started(BackupStarted {
            id: format!("op{i:03}"),
            subject: "shard".into(),
            shard_id: i,
            ..BackupStarted::default()
        });
        let mut events = vec![started];
        if i % 2 == 0 {
            let finished = backups::finished(&format!("op{i:03}"), i, Default::default());
            events.push(finished);
        }
        log.mutate(|_| Ok::<_, TestError>((events, ())))
            .await
            .unwrap();
    }
    let before = log.read(|c| c.clone()).await;
    assert_eq!(
        (before.backups.running.len(), before.backups.last_good.len()),
        (50, 50)
    );
    drop(log);
    let (log, rebuilt) = open(dir.path(), 2048);
    assert!(rebuilt.snapshot_lsn.is_some(), "a snapshot was taken");
    assert!(rebuilt.replayed > 0, "and a tail replayed");
    assert_eq!(log.read(|c| c.clone()).await, before);
    // And what the snapshot holds reads back alone, as a kv backup reads it.
    let state = log.read(|c| c.encode_snapshot()).await;
    assert_eq!(
        shardkeeper::control::ControlState::decode_snapshot(&state).unwrap(),
        before
    );
}

#[tokio::test]
async fn a_refused_mutation_appends_nothing_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), u64::MAX);
    create(&log, "a").await.unwrap();
    let durable = log.log().durable_lsn();
    let spec = RetentionPolicySpec {
        name: "rp".into(),
        duration_nanos: 0,
        shard_group_duration_nanos: 0,
        replication: 1,
    };
    let err = log
        .mutate(|c| Ok::<_, TestError>((c.catalog.create_policy("missing", spec, false)?, ())))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("database not found: missing"),
        "{err}"
    );
    assert_eq!(log.log().durable_lsn(), durable);
    // Re-creating an existing database is InfluxDB's no-op, not an event.
    create(&log, "a").await.unwrap();
    assert_eq!(log.log().durable_lsn(), durable);
}

#[tokio::test]
async fn a_clean_shutdown_snapshot_means_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), u64::MAX);
    for name in ["x", "y", "z"] {
        create(&log, name).await.unwrap();
    }
    let lsn = log.snapshot().await.unwrap();
    drop(log);
    let (log, rebuilt) = open(dir.path(), u64::MAX);
    assert_eq!((rebuilt.snapshot_lsn, rebuilt.replayed), (Some(lsn), 0));
    assert_eq!(log.read(|c| c.catalog.databases.len()).await, 3);
}

/// Snapshot files of a control log directory, oldest first.
fn snapshots(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn a_damaged_newest_snapshot_falls_back_to_the_older_one_with_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 8192);
    for i in 0..1000 {
        create(&log, &format!("db{i:03}")).await.unwrap();
    }
    let before = log.read(|c| c.clone()).await;
    drop(log);
    let kept = snapshots(dir.path());
    assert_eq!(kept.len(), 2, "the newest snapshot and one older: {kept:?}");
    let oldest_segment = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".seg")?.parse::<u64>().ok()
        })
        .min()
        .unwrap();
    assert!(
        oldest_segment > 1,
        "segments the snapshots cover were removed"
    );
    // Damage the middle of the newest snapshot.
    let mut bytes = std::fs::read(&kept[1]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&kept[1], bytes).unwrap();

    let (log, rebuilt) = open(dir.path(), 8192);
    let older: u64 = kept[0]
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(rebuilt.snapshot_lsn, Some(older));
    assert_eq!(log.read(|c| c.clone()).await, before);
    assert_eq!(log.read(|c| c.catalog.databases.len()).await, 1000);
    // The damaged snapshot is set aside, not kept as the next fallback.
    assert_eq!(snapshots(dir.path()), vec![kept[0].clone()]);
    assert!(dir
        .path()
        .join(format!(
            "{}.damaged",
            kept[1].file_name().unwrap().to_str().unwrap()
        ))
        .exists());
}

#[tokio::test]
async fn a_snapshot_beyond_the_end_of_its_log_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), u64::MAX);
    for name in ["x", "y", "z"] {
        create(&log, name).await.unwrap();
    }
    let lsn = log.snapshot().await.unwrap();
    drop(log);
    // The log's segments are lost (or replaced by an older copy); the snapshot is not.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "seg") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let err = ControlLog::open(
        dir.path(),
        LogOptions {
            segment_capacity: 4096,
            ..LogOptions::default()
        },
        u64::MAX,
    )
    .err()
    .expect("refused: new events would get LSNs the snapshot claims, and be skipped");
    assert!(
        matches!(err, ProjectionError::SnapshotBeyondLog { snapshot, end: 0 } if snapshot == lsn),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("snapshot is at LSN {lsn} but the log ends at 0")),
        "{err}"
    );
}

/// A request whose client goes away may drop `mutate` at any await: whatever the log made
/// durable must be in the state (at once, or before the next mutation decides), and
/// nothing the log lacks; restart must give the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_dropped_at_any_await_is_applied_if_and_only_if_durable() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 1 << 30);
    let waker = futures_util::task::noop_waker();
    let mut dropped_after_queueing = 0;
    for polls in 0..8 {
        let name = format!("dropped{polls}");
        let mut mutation = Box::pin(create(&log, &name));
        let mut finished = false;
        for _ in 0..polls {
            if let Poll::Ready(result) = mutation.as_mut().poll(&mut Context::from_waker(&waker)) {
                result.unwrap();
                finished = true;
                break;
            }
        }
        drop(mutation);
        // The next mutation decides on a state that holds every durable event.
        create(&log, &format!("next{polls}")).await.unwrap();
        let durable = log.log().durable_lsn();
        let in_log = events_in_log(&log, durable);
        let known = log.read(|c| c.catalog.databases.contains_key(&name)).await;
        if !finished && in_log.contains(&name) {
            dropped_after_queueing += 1;
        }
        assert_eq!(
            known,
            in_log.contains(&name),
            "dropped after {polls} polls: the state and the log disagree about {name}"
        );
    }
    assert!(
        dropped_after_queueing > 0,
        "no drop landed after the events were queued"
    );
    let before = log.read(|c| c.clone()).await;
    drop(log);
    let (log, _) = open(dir.path(), 1 << 30);
    assert_eq!(log.read(|c| c.clone()).await, before);
}

/// Names of the databases created by the log's events up to `upto`.
fn events_in_log(log: &ControlLog, upto: u64) -> Vec<String> {
    use prost::Message;
    let mut names = Vec::new();
    let mut reader = log.log().reader(1).unwrap();
    while let Some(record) = reader.next().unwrap() {
        if record.lsn > upto {
            break;
        }
        let event = shardkeeper::proto::Event::decode(record.payload).unwrap();
        if let Some(shardkeeper::proto::event::Kind::DatabaseCreated(d)) = event.kind {
            names.push(d.name);
        }
    }
    names
}
